package scenario

import "time"

// The changes of Mixed, by position.
const (
	MixedCheckoutV1 = iota
	MixedCartDeploy
	MixedSearchConfig
	MixedIdleDeploy
	MixedCartScaleUp
	MixedCheckoutFlags
	MixedCheckoutV2
	MixedCheckoutConfig
)

// Mixed is several services over the 90 minutes before end and a mix of
// changes: healthy deploys, a configuration edit on a service nothing else
// touches, a scale-up, a deploy of a service with no traffic, and a bad
// deploy of checkout 22 minutes before end (five times the errors, twice
// the latency), between two harmless changes of checkout. Every change but
// the last has its after window in the past at end; the last, 5 minutes
// before end, is what an alert at end sees unscored.
func Mixed(seed uint64, end time.Time) *Scenario {
	end = end.Truncate(time.Second)
	at := func(before time.Duration) time.Time { return end.Add(-before) }
	return &Scenario{
		Seed:  seed,
		Start: at(90 * time.Minute),
		End:   end,
		Services: []Service{
			{Name: "checkout", Env: "prod", RPS: 40, ErrorRatio: 0.01, Latency: 0.12},
			{Name: "cart", Env: "prod", RPS: 25, ErrorRatio: 0.005, Latency: 0.05},
			{Name: "search", Env: "prod", RPS: 15, ErrorRatio: 0.002, Latency: 0.2, Convention: OTel},
			{Name: "ledger", Env: "prod", RPS: 0, Latency: 0.1},
		},
		Changes: []Change{
			MixedCheckoutV1:     {EventName: "deploy", Kind: "deploy", Service: "checkout", Labels: map[string]string{"version": "checkout-v1"}, At: at(55 * time.Minute), Expect: "no_change"},
			MixedCartDeploy:     {EventName: "deploy", Kind: "deploy", Service: "cart", Labels: map[string]string{"version": "cart-v7"}, At: at(45 * time.Minute), Expect: "no_change"},
			MixedSearchConfig:   {EventName: "config-change", Kind: "config", Service: "search", At: at(35 * time.Minute), Expect: "no_change"},
			MixedIdleDeploy:     {EventName: "deploy", Kind: "deploy", Service: "ledger", Labels: map[string]string{"version": "ledger-v3"}, At: at(32 * time.Minute), Expect: "no_data"},
			MixedCartScaleUp:    {EventName: "scale-up", Kind: "scale-up", Service: "cart", At: at(30 * time.Minute), Duration: 2 * time.Minute, LatencyFactor: 0.95, Expect: "no_change"},
			MixedCheckoutFlags:  {EventName: "flag-change", Kind: "config", Service: "checkout", At: at(28 * time.Minute), Duration: 3 * time.Minute, Expect: "no_change"},
			MixedCheckoutV2:     {EventName: "deploy", Kind: "deploy", Service: "checkout", Labels: map[string]string{"version": "checkout-v2"}, At: at(22 * time.Minute), ErrorFactor: 5, LatencyFactor: 2, Expect: "degraded"},
			MixedCheckoutConfig: {EventName: "config-change", Kind: "config", Service: "checkout", At: at(5 * time.Minute)},
		},
	}
}
