package watch

import (
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Event ids make the watcher idempotent: the server stores an id once, so an
// event derived again from the same object state (after a restart, a relist
// or by a second replica) writes nothing. An id is
//
//	k8s:<object uid>:<region or change key>:<start|stop>
//
// A region's key names what the region is (deploy:r7-<template hash>,
// deploy:r7-<template hash>:step-2, ...) and is derived from the object's
// state only (its uid, revision and pod template), never from the watcher's
// memory, so the watcher that restarts mid-rollout derives the same key. A
// point change's key carries the resourceVersion of the object that showed
// it, which the API server never reuses.
func eventID(uid types.UID, key, state string) string {
	return "k8s:" + string(uid) + ":" + key + ":" + state
}

// revisionKey returns the revision part of a rollout's key: "r<N>" from the
// object's revision annotation (ann), or "g<generation>" where the kind has
// none. old is the object before the pod template changed, or nil when the
// rollout is found already under way.
//
// Kubernetes sets a Deployment's (and an Argo Rollout's) revision annotation
// a moment after the template changes, always to the previous revision plus
// one (a rollback too gets a new revision): the update that changes the
// template still shows the previous revision, so the rollout's revision is
// that plus one. A DaemonSet's template generation changes together with its
// template. Rolling back to an earlier template therefore gets a key of its
// own, and a restarted watcher derives the key of a rollout under way from
// the annotation it then shows.
func revisionKey(ann string, old, cur metav1.Object) string {
	gen := "g" + strconv.FormatInt(cur.GetGeneration(), 10)
	if ann == "" {
		return gen
	}
	nr := cur.GetAnnotations()[ann]
	if old == nil {
		if nr != "" {
			return "r" + nr
		}
		return gen
	}
	or := old.GetAnnotations()[ann]
	if nr != "" && nr != or {
		return "r" + nr
	}
	if n, err := strconv.ParseInt(or, 10, 64); err == nil {
		return "r" + strconv.FormatInt(n+1, 10)
	}
	return gen
}

// changeKey is the key of a point change: what changed and the
// resourceVersion that shows it (a digest of the new content when the
// object has no resourceVersion, as in tests).
func changeKey(what string, obj metav1.Object, fallback string) string {
	v := obj.GetResourceVersion()
	if v == "" {
		v = "x" + fallback
	}
	return what + ":" + strings.ReplaceAll(v, ":", "_")
}
