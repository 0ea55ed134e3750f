package crmkit

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/dealsync/dealsync/connectors"
)

// pacedMinWait is the least wait after a 429 (a variable for tests).
var pacedMinWait = time.Second

// Paced runs call, and runs it again after a 429 (rate limit) answer of
// the CRM, up to attempts times, waiting as long as the CRM says (at
// least 1 s, at most 10 s). It is for the calls a command makes outside a
// run (listing deals), which Temporal does not retry.
func Paced(ctx context.Context, log *slog.Logger, attempts int, call func() error) error {
	for attempt := 1; ; attempt++ {
		err := call()
		var api *connectors.APIError
		if err == nil || attempt >= attempts || !errors.As(err, &api) || api.StatusCode != http.StatusTooManyRequests {
			return err
		}
		wait := min(max(api.RetryAfter, pacedMinWait), 10*time.Second)
		log.Warn("rate-limited; waiting", "service", api.Service, "op", api.Op, "wait", wait, "attempt", attempt)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
