package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tidemark/tidemark/client"
)

// recorder is a Sink that keeps what it is given, deduplicating by id as
// the server does.
type recorder struct {
	mu    sync.Mutex
	evs   []client.Event
	seen  map[string]bool
	calls int
	// fail, when set, answers a Write instead of storing.
	fail func([]client.Event) error
}

func newRecorder() *recorder { return &recorder{seen: map[string]bool{}} }

func (r *recorder) Write(_ context.Context, evs []client.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(evs); err != nil {
			return err
		}
	}
	for _, ev := range evs {
		if ev.ID != "" && r.seen[ev.ID] {
			continue
		}
		r.seen[ev.ID] = true
		r.evs = append(r.evs, ev)
	}
	return nil
}

func (r *recorder) events() []client.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.Event(nil), r.evs...)
}

// summary is an event as "name state k=v,k=v" (labels sorted; the static
// labels namespace and kind are left out for brevity when they are the
// test's defaults).
func summary(ev client.Event) string {
	var kv []string
	for k, v := range ev.Attributes {
		if k == "namespace" && v == "prod" {
			continue
		}
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return ev.Name + " " + ev.State + " " + strings.Join(kv, ",")
}

func summaries(evs []client.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = summary(ev)
	}
	return out
}

// harness runs watchers on fake clients.
type harness struct {
	t    *testing.T
	kube *fake.Clientset
	dyn  *dynamicfake.FakeDynamicClient
	rec  *recorder
	now  atomic.Pointer[time.Time]
	rv   atomic.Int64

	w      *Watcher
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	var typed, rollouts []runtime.Object
	for _, o := range objs {
		if u, ok := o.(*unstructured.Unstructured); ok {
			rollouts = append(rollouts, u)
		} else {
			typed = append(typed, o)
		}
	}
	h := &harness{t: t, kube: fake.NewClientset(typed...), rec: newRecorder()}
	h.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{RolloutsResource: "RolloutList"}, rollouts...)
	now := time.Now()
	h.now.Store(&now)
	h.rv.Store(100)
	return h
}

func (h *harness) clock() time.Time { return *h.now.Load() }

func (h *harness) advance(d time.Duration) {
	t := h.clock().Add(d)
	h.now.Store(&t)
}

// nextRV is a new resourceVersion, as the API server would set.
func (h *harness) nextRV() string { return fmt.Sprint(h.rv.Add(1)) }

// start runs a watcher (stopping the previous one) and waits until it has
// listed everything and written what that decided.
func (h *harness) start(opts Options) {
	h.stop()
	opts.Kube, opts.Sink = h.kube, h.rec
	if opts.Dynamic == nil {
		opts.Dynamic = h.dyn
	}
	if opts.Now == nil {
		opts.Now = h.clock
	}
	w, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, opts)
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	h.w, h.cancel, h.done = w, cancel, make(chan error, 1)
	go func() { h.done <- w.Run(ctx) }()
	require.Eventually(h.t, w.Ready, 10*time.Second, 5*time.Millisecond)
	h.settle()
	h.t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	require.NoError(h.t, <-h.done)
	h.cancel = nil
}

// settle waits until the watcher has written everything it decided and the
// informers have nothing more to deliver (a quiet period).
func (h *harness) settle() {
	h.t.Helper()
	last, quiet := -1, 0
	require.Eventually(h.t, func() bool {
		n := len(h.rec.events())
		if h.w.Pending() == 0 && n == last {
			quiet++
		} else {
			quiet = 0
		}
		last = n
		return quiet >= 5
	}, 10*time.Second, 10*time.Millisecond)
}

// since returns the events recorded after the first n.
func (h *harness) since(n int) []client.Event { return h.rec.events()[n:] }

// noValue asserts that no event (as JSON, labels, metadata and ids
// included) contains any of the values.
func noValue(t *testing.T, evs []client.Event, values ...string) {
	t.Helper()
	b, err := json.Marshal(evs)
	require.NoError(t, err)
	for _, v := range values {
		require.NotContains(t, string(b), v)
	}
}

var ctx = context.Background()

func meta(name string, gen int64) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: "prod", UID: types.UID("uid-" + name2uid(name)), Generation: gen, ResourceVersion: "1",
		Labels: map[string]string{"app.kubernetes.io/name": name},
	}
}

func name2uid(name string) string { return strings.ReplaceAll(name, "-", "") }
