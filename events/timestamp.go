package events

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// epochMillisThreshold tells epoch seconds from epoch milliseconds: 1e11
// seconds is the year 5138, 1e11 milliseconds is March 1973.
const epochMillisThreshold = 1e11

// maxMillis is the last accepted time, 9999-12-31T23:59:59.999Z: the last
// one RFC 3339 can write, so every accepted time can be listed and sent
// back. Epoch microseconds and nanoseconds of our era are above it.
const maxMillis = 253402300799999

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999 -0700",
}

// acceptedTimestamps describes the accepted timestamp forms for errors.
const acceptedTimestamps = `an RFC 3339 time ("2026-11-25T10:00:00Z"), or epoch seconds or milliseconds as a number or a numeric string`

// ParseTimestamp parses an event timestamp given as a string: RFC 3339 /
// ISO 8601 with a zone, or epoch seconds or milliseconds (told apart by
// magnitude) as a numeric string. It returns milliseconds since the epoch.
func ParseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty timestamp")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return EpochToMillis(f)
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Before(time.Unix(0, 0)) {
				return 0, fmt.Errorf("before 1970")
			}
			if ms := t.UnixMilli(); ms <= maxMillis {
				return ms, nil
			}
			return 0, fmt.Errorf("after the year 9999")
		}
	}
	return 0, fmt.Errorf("neither RFC 3339 with a zone nor a number")
}

// EpochToMillis converts epoch seconds or milliseconds, told apart by
// magnitude, to milliseconds.
func EpochToMillis(f float64) (int64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Errorf("not a finite, non-negative number")
	}
	if f >= epochMillisThreshold {
		if f = math.Round(f); f > maxMillis {
			return 0, fmt.Errorf("too large for epoch milliseconds: after the year 9999")
		}
		return int64(f), nil
	}
	return int64(math.Round(f * 1000)), nil
}
