package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The worker command ends with an error when the SDK stops its worker for
// good (it stayed up polling nothing), and without one on a signal.
func TestWorkerEndsOnAFatalError(t *testing.T) {
	fatal := make(chan error, 1)
	fatal <- errors.New("namespace prod not found")
	err := untilStopped(context.Background(), fatal)
	if err == nil || !strings.Contains(err.Error(), "the worker stopped: namespace prod not found") {
		t.Fatalf("fatal error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := untilStopped(ctx, make(chan error)); err != nil {
		t.Fatalf("signal: %v", err)
	}
}
