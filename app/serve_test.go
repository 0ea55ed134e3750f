package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A client that sends a request's headers and then trickles (here: stops
// sending) its body is cut off once the read timeout has passed, instead of
// holding its connection for as long as it likes; a whole request is
// served as usual.
func TestServeCutsOffARequestThatNeverArrives(t *testing.T) {
	old := readTimeout
	readTimeout = 300 * time.Millisecond
	t.Cleanup(func() { readTimeout = old })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return // the read timed out
			}
			fmt.Fprintf(w, "%d bytes", len(b))
		}))
	}()
	t.Cleanup(func() { cancel(); <-done })

	resp, err := http.Post("http://"+l.Addr().String(), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a whole request: %d", resp.StatusCode)
	}

	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a little"); err != nil {
		t.Fatal(err)
	}
	// Generous: the point is that the server ends it, not how fast.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept the connection of a body that never came")
	}
}
