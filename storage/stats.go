package storage

import (
	"errors"

	"github.com/prometheus/prometheus/tsdb"
)

// ErrNoStats is returned by HeadStats for storage that is not a local TSDB
// (a remote engine answers /api/v1/status/tsdb itself).
var ErrNoStats = errors.New("this storage has no TSDB statistics")

// StatsReporter is implemented by an Org whose samples are in a local TSDB:
// its head block's cardinality statistics, as /api/v1/status/tsdb shows them.
type StatsReporter interface {
	HeadStats(statsByLabelName string, limit int) (*tsdb.Stats, error)
}

// HeadStats implements StatsReporter.
func (o embeddedOrg) HeadStats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	return o.Head().Stats(statsByLabelName, limit), nil
}

// OrgHeadStats returns the head statistics of o (or of the storage it
// wraps), or ErrNoStats.
func OrgHeadStats(o Org, statsByLabelName string, limit int) (*tsdb.Stats, error) {
	if s, ok := As[StatsReporter](o); ok {
		return s.HeadStats(statsByLabelName, limit)
	}
	return nil, ErrNoStats
}
