package devserver

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/server/common/log/tag"
)

// The server's warning that the Web UI asked for a larger history page
// than it serves (one per run page opened) is logged at debug: nothing
// to act on, and it tripped alerts on the log's warnings. Other warnings
// stay warnings.
func TestHarmlessServerWarningsAreDebug(t *testing.T) {
	var out bytes.Buffer
	level := &atomic.Int64{}
	level.Store(int64(slog.LevelDebug))
	l := slogLogger{log: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), level: level}
	l.Warn("GetHistory page size is larger than threshold", tag.WorkflowID("invoice/demo/D-1"))
	l.Warn("something else")
	got := out.String()
	if !strings.Contains(got, `level=DEBUG msg="GetHistory page size is larger than threshold"`) || !strings.Contains(got, `level=WARN msg="something else"`) {
		t.Errorf("log:\n%s", got)
	}
}
