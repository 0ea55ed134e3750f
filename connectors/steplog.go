package connectors

import (
	"context"
	"log/slog"
	"slices"
)

// A connector logs with the logger the process gave it (Env.Logger), which
// knows nothing of the run a call belongs to: connectors import nothing
// of Temporal. The customer and invoice steps put what ties a line to its
// run (the connection, the target, the deal, the workflow id) into the
// step's context (WithLogAttrs), and the lines an ERP target logs with
// StepLogger during those steps carry it.

type logAttrsKey struct{}

// WithLogAttrs returns ctx whose connector log lines (StepLogger) carry
// args too, slog's key-value pairs, after those ctx carried already.
func WithLogAttrs(ctx context.Context, args ...any) context.Context {
	prev, _ := ctx.Value(logAttrsKey{}).([]any)
	return context.WithValue(ctx, logAttrsKey{}, append(slices.Clip(prev), args...))
}

// StepLogger is log with the attributes of ctx (WithLogAttrs): the logger
// of a line a connector logs during a step. A nil log stays nil.
func StepLogger(ctx context.Context, log *slog.Logger) *slog.Logger {
	args, _ := ctx.Value(logAttrsKey{}).([]any)
	if log == nil || len(args) == 0 {
		return log
	}
	return log.With(args...)
}
