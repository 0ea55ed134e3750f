package devserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// slogLogger adapts slog to the server's logger interface, with a level that
// can be raised while the server stops.
type slogLogger struct {
	log   *slog.Logger
	level *atomic.Int64
	// fatal, if set, keeps the first Fatal message.
	fatal *fatalLog
	// stopping, if set and true, says the server is being stopped: the
	// errors of stopping are logged at debug.
	stopping *atomic.Bool
}

var _ log.Logger = slogLogger{}

func (s slogLogger) Debug(msg string, tags ...tag.Tag) { s.emit(slog.LevelDebug, msg, tags) }
func (s slogLogger) Info(msg string, tags ...tag.Tag)  { s.emit(slog.LevelInfo, msg, tags) }
func (s slogLogger) Warn(msg string, tags ...tag.Tag)  { s.emit(slog.LevelWarn, msg, tags) }
func (s slogLogger) Error(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }
func (s slogLogger) DPanic(msg string, tags ...tag.Tag) {
	s.emit(slog.LevelError, msg, tags)
}
func (s slogLogger) Panic(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }
func (s slogLogger) Fatal(msg string, tags ...tag.Tag) {
	s.emit(slog.LevelError, msg, tags)
	if s.fatal != nil {
		s.fatal.record(msg, tags)
	}
}

// fatalLog keeps the first message the server logged at Fatal level. The
// server's own logger ends the process there; this one only logs, and
// startTemporal reads it instead: a service whose listener cannot bind its port
// logs Fatal and goes on without one, to crash when it is started.
type fatalLog struct {
	mu    sync.Mutex
	first error
}

func (f *fatalLog) record(msg string, tags []tag.Tag) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.first != nil {
		return
	}
	var cause error
	var rest []string
	for _, t := range tags {
		if err := tagError(t); err != nil && cause == nil {
			cause = err
			continue
		}
		if kv := fmt.Sprintf("%s=%v", t.Key(), t.Value()); !slices.Contains(rest, kv) {
			rest = append(rest, kv)
		}
	}
	if len(rest) > 0 {
		msg += " (" + strings.Join(rest, " ") + ")"
	}
	if cause != nil {
		f.first = fmt.Errorf("%s: %w", msg, cause)
	} else {
		f.first = errors.New(msg)
	}
}

// err is the first Fatal message as an error (wrapping the error it
// was logged with), or nil.
func (f *fatalLog) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first
}

// harmless are server warnings of what an operator does as the Web UI
// is meant to be used, and nothing to act on: logged at debug. The UI
// asks for history pages larger than the server serves, and the server
// serves its largest (a warning per run page opened, which tripped
// alerts on the log's warnings).
var harmless = map[string]bool{"GetHistory page size is larger than threshold": true}

// harmlessWhenStopping are server errors of a clean stop, nothing to act
// on: logged at debug while the server stops. A call the stop cuts short
// has sent its headers already, and the server's metrics interceptor then
// fails to add its trailer ("… SendHeader called multiple times").
var harmlessWhenStopping = map[string]bool{"unable to add metrics baggage to gRPC trailer": true}

func (s slogLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	if level == slog.LevelWarn && harmless[msg] {
		level = slog.LevelDebug
	}
	if level == slog.LevelError && harmlessWhenStopping[msg] && s.stopping != nil && s.stopping.Load() {
		level = slog.LevelDebug
	}
	if int64(level) < s.level.Load() {
		return
	}
	attrs := make([]slog.Attr, len(tags))
	for i, t := range tags {
		attrs[i] = slog.Any(t.Key(), t.Value())
	}
	s.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// quietSDKLogger is used by the short-lived admin client: its connection
// chatter is of no interest.
func quietSDKLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
}

// tagError is the error of a tag.Error (whose Value is only its text).
func tagError(t tag.Tag) error {
	if z, ok := t.(tag.ZapTag); ok && t.Key() == "error" {
		err, _ := z.Field().Interface.(error)
		return err
	}
	return nil
}
