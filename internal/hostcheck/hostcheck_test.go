package hostcheck

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAllows(t *testing.T) {
	c := New("the test server", "dev.allowed_hosts", "127.0.0.1", []string{"MyLaptop.Local.", "10.1.2.3"}, nil)
	for host, want := range map[string]bool{
		"localhost":              true,
		"localhost:8233":         true,
		"LOCALHOST:8233":         true,
		"localhost.:8233":        true,
		"127.0.0.1":              true,
		"127.0.0.1:8233":         true,
		"[::1]":                  true,
		"[::1]:8233":             true,
		"[0:0:0:0:0:0:0:1]:80":   true,
		"mylaptop.local":         true,
		"MYLAPTOP.LOCAL:8233":    true,
		"mylaptop.local.:8233":   true,
		"10.1.2.3:8233":          true,
		"evil.example":           false,
		"evil.example:8233":      false,
		"localhost.evil.example": false,
		"mylaptop.local.evil":    false,
		"10.1.2.4:8233":          false,
		"192.168.1.5:8233":       false,
		"":                       false,
		"0.0.0.0:8233":           false,
	} {
		if got := c.Allows(host); got != want {
			t.Errorf("Allows(%q) = %v, want %v", host, got, want)
		}
	}
}

// A server bound to a LAN address answers that address; one on every
// interface answers this machine's addresses, and still no other name.
func TestListenAddressIsAllowed(t *testing.T) {
	lan := New("s", "k", "192.168.1.5", nil, nil)
	if !lan.Allows("192.168.1.5:8090") || lan.Allows("192.168.1.6:8090") || !lan.Allows("localhost:8090") {
		t.Error("a server on 192.168.1.5 should answer 192.168.1.5 and localhost, not 192.168.1.6")
	}
	local := func(ip string) bool { return ip == "192.168.1.5" }
	for _, listen := range []string{"", "0.0.0.0", "::", "[::]"} {
		all := New("s", "k", listen, nil, local)
		if !all.Allows("192.168.1.5:8090") || all.Allows("192.168.1.6:8090") || all.Allows("evil.example:8090") {
			t.Errorf("a server on %q should answer this machine's 192.168.1.5 only", listen)
		}
	}
	if New("s", "k", "127.0.0.1", nil, local).Allows("192.168.1.5:8090") {
		t.Error("a server on loopback answers a LAN address of the machine")
	}
}

func TestHandlerRefusesWith403NamingTheSetting(t *testing.T) {
	h := New("the Web UI of dealsync dev", "dev.allowed_hosts (env DEALSYNC_DEV_ALLOWED_HOSTS)", "127.0.0.1", nil, nil).
		Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the UI") }))
	for host, want := range map[string]int{"evil.example": http.StatusForbidden, "127.0.0.1:8233": http.StatusOK} {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != want {
			t.Errorf("Host %s: %d %q, want %d", host, rec.Code, body, want)
		}
		if want == http.StatusForbidden {
			if !strings.Contains(body, "dev.allowed_hosts") || strings.Count(strings.TrimSpace(body), "\n") != 0 || strings.Contains(body, "the UI") {
				t.Errorf("refusal %q: want one line naming dev.allowed_hosts", body)
			}
		} else if body != "the UI" {
			t.Errorf("Host %s: body %q", host, body)
		}
	}
}

// A refusal names every host the server answers: the loopback ones, the
// names allowed and the address it listens on, so that the one line says
// what to use instead.
func TestRefusalNamesTheHostsAnswered(t *testing.T) {
	got := New("the UI", "dev.allowed_hosts", "192.168.1.20", []string{"MyLaptop.test.", "fd00::1"}, nil).Refusal("evil.example")
	want := `it answers localhost, 127.0.0.1, [::1], 192.168.1.20, [fd00::1] and mylaptop.test; to use another name, add it to dev.allowed_hosts`
	if !strings.Contains(got, want) {
		t.Errorf("refusal %q, want it to hold %q", got, want)
	}
	got = New("the UI", "dev.allowed_hosts", "0.0.0.0", nil, func(string) bool { return false }).Refusal("evil.example")
	if want := "it answers localhost, 127.0.0.1, [::1] and this machine's addresses;"; !strings.Contains(got, want) {
		t.Errorf("refusal %q, want it to hold %q", got, want)
	}
}
