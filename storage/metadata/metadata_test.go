package metadata

import (
	"testing"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/scrape"
	"github.com/stretchr/testify/require"
)

func TestFamily(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  model.MetricType
		want string
	}{
		{"http_request_duration_seconds_bucket", model.MetricTypeHistogram, "http_request_duration_seconds"},
		{"http_request_duration_seconds_count", model.MetricTypeHistogram, "http_request_duration_seconds"},
		{"rpc_seconds_sum", model.MetricTypeSummary, "rpc_seconds"},
		{"queue_gcount", model.MetricTypeGaugeHistogram, "queue"},
		{"http_requests_total", model.MetricTypeCounter, "http_requests_total"},
		{"temp_sum", model.MetricTypeGauge, "temp_sum"},
		{"_bucket", model.MetricTypeHistogram, "_bucket"},
	} {
		require.Equal(t, tc.want, Family(tc.name, tc.typ), "%s %s", tc.name, tc.typ)
	}
}

func TestStoreLimitAndIsolation(t *testing.T) {
	s := New(2)
	s.Set("acme", []scrape.MetricMetadata{{MetricFamily: "a", Type: "gauge"}, {MetricFamily: "b", Type: "counter"}, {MetricFamily: "c", Type: "gauge"}})
	s.Set("acme", []scrape.MetricMetadata{{MetricFamily: "a", Type: "counter", Help: "now a counter"}})
	acme := s.Org("acme")
	require.Equal(t, 2, acme.LengthMetadata())
	m, ok := acme.GetMetadata("a")
	require.True(t, ok)
	require.Equal(t, "now a counter", m.Help)
	_, ok = acme.GetMetadata("c")
	require.False(t, ok, "past the limit")
	require.Empty(t, s.Org("globex").ListMetadata())
	require.Equal(t, []string{"a", "b"}, []string{acme.ListMetadata()[0].MetricFamily, acme.ListMetadata()[1].MetricFamily})
}

func TestFromWriteV1(t *testing.T) {
	req := prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "__name__", Value: "x"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}},
		Metadata: []prompb.MetricMetadata{
			{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "x_total", Help: "Xs.", Unit: "1"},
			{Type: prompb.MetricMetadata_HISTOGRAM, MetricFamilyName: "lat_seconds"},
			{Type: prompb.MetricMetadata_GAUGE},
		},
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	ms, err := FromWriteV1(snappy.Encode(nil, b))
	require.NoError(t, err)
	require.Equal(t, []scrape.MetricMetadata{
		{MetricFamily: "x_total", Type: "counter", Help: "Xs.", Unit: "1"},
		{MetricFamily: "lat_seconds", Type: "histogram"},
	}, ms)

	_, err = FromWriteV1([]byte("not snappy"))
	require.Error(t, err)
	_, err = FromWriteV1(snappy.Encode(nil, []byte{0xff, 0xff}))
	require.Error(t, err)
}

func FuzzFromWriteV1(f *testing.F) {
	req := prompb.WriteRequest{Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "g"}}}
	b, _ := req.Marshal()
	f.Add(snappy.Encode(nil, b))
	f.Fuzz(func(t *testing.T, in []byte) {
		FromWriteV1(in) // must not panic
	})
}
