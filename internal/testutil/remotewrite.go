// Package testutil holds helpers shared by Tidemark's tests: writing with
// Prometheus's own remote-write client and OTLP, starting the real binary.
package testutil

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	config_util "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/stretchr/testify/require"
)

// Series is a series to write: its labels (with __name__) and samples,
// and optionally exemplars and metadata.
type Series struct {
	Labels    labels.Labels
	Samples   []Sample
	Exemplars []Exemplar
	// Type, Help and Unit are the series' metadata: remote write 2.0 sends
	// them with the series (Type gauge when empty), 1.0 as a metadata
	// record of the metric family Family (the metric name when empty) when
	// Type is set.
	Type, Help, Unit, Family string
}

// Exemplar is one exemplar of a series.
type Exemplar struct {
	Labels labels.Labels
	T      int64 // milliseconds
	V      float64
}

// Sample is one float sample.
type Sample struct {
	T int64 // milliseconds
	V float64
}

// WriteClient returns Prometheus's own remote-write client for url, sending
// token as a bearer token (or as the basic-auth password when basic is set),
// speaking remote write 1.0 or 2.0.
func WriteClient(t testing.TB, rawURL, token string, v2, basic bool) remote.WriteClient {
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	cfg := config_util.HTTPClientConfig{}
	if basic {
		cfg.BasicAuth = &config_util.BasicAuth{Username: "prometheus", Password: config_util.Secret(token)}
	} else {
		cfg.Authorization = &config_util.Authorization{Type: "Bearer", Credentials: config_util.Secret(token)}
	}
	msg := remoteapi.WriteV1MessageType
	if v2 {
		msg = remoteapi.WriteV2MessageType
	}
	c, err := remote.NewWriteClient("test", &remote.ClientConfig{
		URL:              &config_util.URL{URL: u},
		Timeout:          model.Duration(30 * time.Second),
		HTTPClientConfig: cfg,
		WriteProtoMsg:    msg,
	})
	require.NoError(t, err)
	return c
}

// EncodeV1 encodes series as a snappy-compressed remote write 1.0 request,
// as Prometheus's queue manager does.
func EncodeV1(t testing.TB, series []Series) []byte {
	req := prompb.WriteRequest{}
	for _, s := range series {
		ts := prompb.TimeSeries{}
		s.Labels.Range(func(l labels.Label) {
			ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value})
		})
		for _, smp := range s.Samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: smp.T, Value: smp.V})
		}
		for _, e := range s.Exemplars {
			pe := prompb.Exemplar{Timestamp: e.T, Value: e.V}
			e.Labels.Range(func(l labels.Label) {
				pe.Labels = append(pe.Labels, prompb.Label{Name: l.Name, Value: l.Value})
			})
			ts.Exemplars = append(ts.Exemplars, pe)
		}
		req.Timeseries = append(req.Timeseries, ts)
		if s.Type != "" {
			fam := s.Family
			if fam == "" {
				fam = s.Labels.Get(model.MetricNameLabel)
			}
			req.Metadata = append(req.Metadata, prompb.MetricMetadata{
				Type:             prompb.MetricMetadata_MetricType(prompb.MetricMetadata_MetricType_value[strings.ToUpper(s.Type)]),
				MetricFamilyName: fam, Help: s.Help, Unit: s.Unit,
			})
		}
	}
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// EncodeV2 encodes series as a snappy-compressed remote write 2.0 request.
func EncodeV2(t testing.TB, series []Series) []byte {
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for _, s := range series {
		md := writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE}
		if s.Type != "" {
			md.Type = writev2.Metadata_MetricType(writev2.Metadata_MetricType_value["METRIC_TYPE_"+strings.ToUpper(s.Type)])
		}
		if s.Help != "" {
			md.HelpRef = st.Symbolize(s.Help)
		}
		if s.Unit != "" {
			md.UnitRef = st.Symbolize(s.Unit)
		}
		ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(s.Labels, nil), Metadata: md}
		for _, smp := range s.Samples {
			ts.Samples = append(ts.Samples, writev2.Sample{Timestamp: smp.T, Value: smp.V})
		}
		for _, e := range s.Exemplars {
			ts.Exemplars = append(ts.Exemplars, writev2.Exemplar{LabelsRefs: st.SymbolizeLabels(e.Labels, nil), Timestamp: e.T, Value: e.V})
		}
		req.Timeseries = append(req.Timeseries, ts)
	}
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	return snappy.Encode(nil, b)
}

// RemoteWrite writes series with Prometheus's remote-write client.
func RemoteWrite(t testing.TB, rawURL, token string, v2 bool, series []Series) error {
	c := WriteClient(t, rawURL, token, v2, false)
	body := EncodeV1(t, series)
	if v2 {
		body = EncodeV2(t, series)
	}
	_, err := c.Store(context.Background(), body, 0)
	return err
}
