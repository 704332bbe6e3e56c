package web

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// tokenLimiter bounds the request rate of each token.
type tokenLimiter struct {
	rps   rate.Limit
	burst int

	mtx      sync.Mutex
	limiters map[string]*rate.Limiter // by token hash
	rejected prometheus.Counter
}

func newTokenLimiter(rps float64, burst int, rejected prometheus.Counter) *tokenLimiter {
	if burst < 1 {
		burst = max(1, int(math.Ceil(rps)))
	}
	return &tokenLimiter{rps: rate.Limit(rps), burst: burst, limiters: map[string]*rate.Limiter{}, rejected: rejected}
}

// allow takes one request of the token's budget; when none is left it
// returns how long until one is.
func (l *tokenLimiter) allow(hash string, now time.Time) (bool, time.Duration) {
	if l == nil || l.rps <= 0 {
		return true, 0
	}
	l.mtx.Lock()
	lim, ok := l.limiters[hash]
	if !ok {
		lim = rate.NewLimiter(l.rps, l.burst)
		l.limiters[hash] = lim
	}
	l.mtx.Unlock()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	l.rejected.Inc()
	r := lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

func (l *tokenLimiter) message(name string, wait time.Duration) string {
	return fmt.Sprintf("the token %q sent more than %g requests per second (burst %d; --limits.token-requests-per-second); retry after %s",
		name, float64(l.rps), l.burst, wait.Round(time.Millisecond))
}
