package devserver

import (
	"context"
	"log/slog"
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
func (s slogLogger) Fatal(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }

func (s slogLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
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
