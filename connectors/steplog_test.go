package connectors

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// A connector's line during a step carries what the step's context was
// given, in order and added to (a nested WithLogAttrs does not drop the
// run's); outside a step, or without a logger, nothing changes.
func TestStepLoggerCarriesTheStepsAttributes(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	ctx := WithLogAttrs(context.Background(), "connection", "pd", "deal_id", "D-7")
	inner := WithLogAttrs(ctx, "target", "books")
	StepLogger(inner, log).Warn("invoice total differs in the ERP", "erp", "Xero")
	StepLogger(ctx, log).Warn("second")
	StepLogger(context.Background(), log).Warn("outside")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], `msg="invoice total differs in the ERP" connection=pd deal_id=D-7 target=books erp=Xero`) ||
		!strings.HasSuffix(lines[1], "msg=second connection=pd deal_id=D-7") || !strings.HasSuffix(lines[2], "msg=outside") {
		t.Errorf("lines:\n%s", out.String())
	}
	if StepLogger(ctx, nil) != nil {
		t.Error("a nil logger is not kept nil")
	}
}
