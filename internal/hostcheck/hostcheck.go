// Package hostcheck refuses HTTP requests whose Host header names a host
// a local, unauthenticated server does not serve: the defence of local
// dev servers (Vite, Jupyter, webpack-dev-server) against DNS rebinding.
//
// A web page the developer opens can make its own name resolve to
// 127.0.0.1 (rebinding it after the page has loaded); the browser then
// sends the page's requests to the local server as same-origin ones, and
// lets the page read the answers. The browser still sends the page's
// name in the Host header: a server that answers only the loopback names
// and addresses (and names its user allowed) gives such a page nothing.
// An IP address in Host cannot be rebound, so an address of the
// interface a server listens on is safe to allow.
package hostcheck

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
)

// Checker decides which Host headers a server answers.
type Checker struct {
	what    string
	setting string
	allowed map[string]bool
	// anyLocalIP, for a server listening on every interface: any IP
	// address of this machine is allowed (isLocalIP says which).
	anyLocalIP bool
	isLocalIP  func(string) bool
}

// New returns the checker of the server called what (e.g. "the Web UI of
// dealsync dev"), listening on listenHost (the host of its listen
// address: "" or an unspecified address means every interface), which
// also answers the hosts of allowed (names or IP addresses, matched
// without case and trailing dot); setting names where a developer adds
// one (e.g. "dev.allowed_hosts (env DEALSYNC_DEV_ALLOWED_HOSTS)").
// isLocalIP says whether an IP address is one of this machine's (nil:
// one of its interfaces' addresses); it is asked only for a server on
// every interface.
func New(what, setting, listenHost string, allowed []string, isLocalIP func(string) bool) *Checker {
	if isLocalIP == nil {
		isLocalIP = interfaceIP
	}
	c := &Checker{what: what, setting: setting, allowed: map[string]bool{}, isLocalIP: isLocalIP}
	for _, h := range allowed {
		c.allowed[Normalize(h)] = true
	}
	switch ip := net.ParseIP(strings.Trim(listenHost, "[]")); {
	case listenHost == "" || (ip != nil && ip.IsUnspecified()):
		c.anyLocalIP = true
	case ip != nil:
		// A server bound to a LAN address is reached by it.
		c.allowed[ip.String()] = true
	}
	return c
}

// Allows reports whether a request whose Host header is host is
// answered: localhost, a loopback address (127.0.0.1, [::1]), a host
// the checker was given, any port.
func (c *Checker) Allows(host string) bool {
	h := hostOf(host)
	if h == "" {
		return false
	}
	if h == "localhost" || c.allowed[h] {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	return ip.IsLoopback() || (c.anyLocalIP && c.isLocalIP(ip.String()))
}

// Handler answers the requests Allows allows with next, and the others
// with 403 and a line saying which setting allows a host.
func (c *Checker) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !c.Allows(r.Host) {
			http.Error(w, c.Refusal(r.Host), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Refusal is the one line a refused request for host is answered with:
// the hosts the server does answer, and the setting that adds one.
func (c *Checker) Refusal(host string) string {
	return fmt.Sprintf("%s refuses requests for host %q (a protection against DNS rebinding): it answers %s; to use another name, add it to %s",
		c.what, host, c.answers(), c.setting)
}

// answers says the hosts the checker allows: the loopback ones, then
// the others it was given or listens on, sorted, then this machine's
// addresses when it listens on every interface.
func (c *Checker) answers() string {
	hosts := []string{"localhost", "127.0.0.1", "[::1]"}
	for _, h := range slices.Sorted(maps.Keys(c.allowed)) {
		if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
			h = "[" + h + "]"
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if c.anyLocalIP {
		hosts = append(hosts, "this machine's addresses")
	}
	return strings.Join(hosts[:len(hosts)-1], ", ") + " and " + hosts[len(hosts)-1]
}

// hostOf is the host of a Host header (without its port and the brackets
// of an IPv6 address), lower case, without a trailing dot.
func hostOf(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return Normalize(h)
}

// Normalize is a host (a name or an IP address, an IPv6 one in brackets
// or not) as compared, and as a browser writes it in an Origin: lower
// case, without one trailing dot (a fully qualified name), an IP address
// in its canonical form, without brackets.
func Normalize(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return h
}

// interfaceIP reports whether ip is an address of one of this machine's
// network interfaces.
func interfaceIP(ip string) bool {
	want := net.ParseIP(ip)
	addrs, err := net.InterfaceAddrs()
	if err != nil || want == nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(want) {
			return true
		}
	}
	return false
}
