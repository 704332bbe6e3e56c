package metadata

import (
	"fmt"
	"strings"
	"sync"

	"github.com/golang/snappy"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/scrape"
	"google.golang.org/protobuf/encoding/protowire"
)

// MaxDecodedWrite is the largest decoded remote-write request whose
// metadata is read: the limit of Prometheus's remote-write handler, which
// refuses larger ones.
const MaxDecodedWrite = 32 << 20

// decodeBuffers hold decoded requests: the strings kept are copies.
var decodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// fieldMetadata is the number of prometheus.WriteRequest's metadata field.
const fieldMetadata = 3

// FromWriteV1 returns the metadata of a snappy-compressed remote-write 1.0
// request (prometheus.WriteRequest): its metadata field, which Prometheus
// sends in requests of their own. Time series are skipped over, not
// decoded.
func FromWriteV1(compressed []byte) ([]scrape.MetricMetadata, error) {
	n, err := snappy.DecodedLen(compressed)
	if err != nil {
		return nil, err
	}
	if n > MaxDecodedWrite {
		return nil, fmt.Errorf("decoded request of %d bytes is larger than %d", n, MaxDecodedWrite)
	}
	bp := decodeBuffers.Get().(*[]byte)
	defer decodeBuffers.Put(bp)
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	b, err := snappy.Decode((*bp)[:n], compressed)
	if err != nil {
		return nil, err
	}
	var out []scrape.MetricMetadata
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num != fieldMetadata || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		var m prompb.MetricMetadata
		if err := m.Unmarshal(v); err != nil {
			return nil, err
		}
		if m.MetricFamilyName == "" {
			continue
		}
		out = append(out, scrape.MetricMetadata{
			MetricFamily: m.MetricFamilyName,
			Type:         metricType(m.Type),
			Help:         m.Help,
			Unit:         m.Unit,
		})
	}
	return out, nil
}

func metricType(t prompb.MetricMetadata_MetricType) model.MetricType {
	name, ok := prompb.MetricMetadata_MetricType_name[int32(t)]
	if !ok {
		return model.MetricTypeUnknown
	}
	return model.MetricType(strings.ToLower(name))
}
