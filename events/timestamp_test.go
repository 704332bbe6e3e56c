package events

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTimestamp(t *testing.T) {
	want := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC).UnixMilli()
	for _, s := range []string{
		"2026-11-25T09:00:00Z", "2026-11-25T09:00:00.000Z", "2026-11-25T10:00:00+01:00",
		"2026-11-25T10:00:00+0100", "2026-11-25 09:00:00Z", "1795597200", "1795597200000", " 1795597200.000 ",
	} {
		got, err := ParseTimestamp(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "2026-11-25", "2026-11-25T09:00:00", "yesterday", "NaN", "-1", "Inf"} {
		_, err := ParseTimestamp(s)
		require.Error(t, err, s)
	}
}

// TestParseTimestampBounds: the accepted times are those RFC 3339 can
// write, from 1970 to the end of the year 9999, whatever form they came in.
func TestParseTimestampBounds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // -1: refused
	}{
		{"0", 0},
		{"1970-01-01T00:00:00Z", 0},
		{"1970-01-01T00:30:00+01:00", -1},
		{"9999-12-31T23:59:59.999Z", maxMillis},
		{"9999-12-31T23:59:59.999-00:01", -1}, // 10000-01-01 in UTC
		{"10000-01-01T00:00:00Z", -1},
		{"253402300799999", maxMillis},
		{"253402300800000", -1},
		{"99999999999.999", 99999999999999},
		{"253402300799.999", 253402300800}, // from 1e11, even with a fraction: milliseconds
		{"99999999999", 99999999999000},    // below 1e11: seconds
		{"100000000000", 100000000000},     // from 1e11: milliseconds
		{"1e15", -1},
	} {
		got, err := ParseTimestamp(tc.in)
		if tc.want < 0 {
			require.Error(t, err, "%q parsed to %d", tc.in, got)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

// FuzzParseTimestamp: no input panics, and every accepted time round-trips:
// written back as RFC 3339 with milliseconds, as epoch milliseconds and as
// epoch seconds with a fraction, it parses to the same millisecond. Where
// magnitude makes a form mean something else, that is checked instead:
// epoch milliseconds below 1e11 (before March 1973) are read as seconds;
// epoch seconds from 1e11 (the year 5138) are not written.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"2026-11-25T09:00:00Z", "2026-11-25T10:00:00+01:00", "1795597200", "1795597200123", "1795597200.5", "", "x", "1e400", "-0",
		"9999-12-31T23:59:59.999Z", "9999-12-31T23:00:00-05:00", "999999999999999", "0.0004",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		if ms < 0 || ms > maxMillis {
			t.Fatalf("%q parsed to %d, outside [0, %d]", s, ms, int64(maxMillis))
		}
		forms := map[string]int64{time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00"): ms}
		if secs := ms / 1000; secs < epochMillisThreshold {
			forms[strconv.FormatInt(secs, 10)+"."+strconv.FormatInt(1000+ms%1000, 10)[1:]] = ms
		}
		if ms >= epochMillisThreshold {
			forms[strconv.FormatInt(ms, 10)] = ms
		} else {
			forms[strconv.FormatInt(ms, 10)] = ms * 1000
		}
		for form, want := range forms {
			back, err := ParseTimestamp(form)
			if err != nil {
				t.Fatalf("%q parsed to %d, written back as %q it is refused: %v", s, ms, form, err)
			}
			if back != want {
				t.Fatalf("%q parsed to %d, written back as %q it parses to %d, not %d", s, ms, form, back, want)
			}
		}
	})
}
