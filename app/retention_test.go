package app

import (
	"strings"
	"testing"
	"time"
)

// A namespace that forgets finished runs within a week is warned about,
// naming it, its retention and the command that lengthens it.
func TestRetentionWarning(t *testing.T) {
	if w := retentionWarning("prod", 24*time.Hour); !strings.Contains(w, `namespace "prod" keeps finished runs for 24h only`) ||
		!strings.Contains(w, "--namespace prod --retention 30d") {
		t.Errorf("24 h: %q", w)
	}
	for _, d := range []time.Duration{0, MinRetention, 30 * 24 * time.Hour} {
		if w := retentionWarning("prod", d); w != "" {
			t.Errorf("%v: %q, want no warning", d, w)
		}
	}
}
