package crmkit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/dealsync/dealsync/connectors"
)

// Paced asks again after a 429 only, as often as allowed, and returns the
// last answer.
func TestPaced(t *testing.T) {
	defer func(d time.Duration) { pacedMinWait = d }(pacedMinWait)
	pacedMinWait = time.Millisecond
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	limited := &connectors.APIError{Service: "crm", Op: "list", StatusCode: 429}
	for _, c := range []struct {
		name     string
		answers  []error
		attempts int
		calls    int
		status   int // of the error returned (0: none)
	}{
		{"ok at once", []error{nil}, 5, 1, 0},
		{"ok after two 429", []error{limited, limited, nil}, 5, 3, 0},
		{"429 until the attempts run out", []error{limited, limited, limited}, 3, 3, 429},
		{"another error is not asked again", []error{&connectors.APIError{StatusCode: 503}, nil}, 5, 1, 503},
	} {
		calls := 0
		err := Paced(context.Background(), log, c.attempts, func() error {
			calls++
			return c.answers[calls-1]
		})
		if calls != c.calls {
			t.Errorf("%s: %d calls, want %d", c.name, calls, c.calls)
		}
		var api *connectors.APIError
		switch {
		case c.status == 0 && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.status != 0 && (!errors.As(err, &api) || api.StatusCode != c.status):
			t.Errorf("%s: %v, want the %d", c.name, err, c.status)
		}
	}
}
