//go:build unix

package erpkit

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// Waiting for the lock another holder has ends with the caller's context.
func TestLockWaitsNoLongerThanTheContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	store := &FileTokenStore{Path: path}
	unlock, err := store.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// Another open file description: flock(2) conflicts with it even
		// within one process.
		u, err := store.Lock(ctx)
		if u != nil {
			u()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's deadline", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the lock was waited for past the context's deadline")
	}
}
