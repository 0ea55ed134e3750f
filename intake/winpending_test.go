package intake

import (
	"strings"
	"testing"
	"time"
)

// A change refused while its deal's win may still come names the
// connection's settle_time as the config writes durations (2m, 1m30s),
// not in Go's form (2m0s).
func TestWinPendingSaysTheSettleTimeAsTheConfigWritesIt(t *testing.T) {
	for settle, want := range map[time.Duration]string{
		2 * time.Minute:  `connection "shop"'s settle_time (2m)`,
		90 * time.Second: `connection "shop"'s settle_time (1m30s)`,
	} {
		err := &winPendingError{conn: "shop", eventID: "e1", dealID: "D-1", settle: settle}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("settle %s: %q, want %q", settle, err.Error(), want)
		}
	}
}
