package app

import (
	"net/http"
	"testing"
	"time"

	"github.com/dealsync/dealsync/config"
)

// The connectors' HTTP client times a call out no sooner than a step may
// last (workflow.activity_timeout), and after a minute at the least: a
// backstop shorter than the step cut calls the step allowed, which were
// then retried for ever. It keeps connections to a host alive.
func TestConnectorClientTimeoutIsNeverShorterThanAStep(t *testing.T) {
	for _, c := range []struct{ step, want time.Duration }{
		{10 * time.Second, time.Minute},
		{time.Minute, time.Minute},
		{5 * time.Minute, 5 * time.Minute},
	} {
		cfg := &config.Config{}
		cfg.Workflow.ActivityTimeout = c.step
		hc := connectorClient(cfg)
		if hc.Timeout != c.want {
			t.Errorf("activity_timeout %v: client timeout %v, want %v", c.step, hc.Timeout, c.want)
		}
		if tr, ok := hc.Transport.(*http.Transport); !ok {
			t.Errorf("activity_timeout %v: transport %T, want an *http.Transport", c.step, hc.Transport)
		} else if tr.MaxIdleConnsPerHost != 64 {
			t.Errorf("activity_timeout %v: %d idle connections per host, want 64", c.step, tr.MaxIdleConnsPerHost)
		}
	}
}
