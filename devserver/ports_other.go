//go:build !linux

package devserver

import (
	"net"
	"strconv"
)

// holdsPortsWhileBinding is false here: a socket bound to a port keeps
// the server from binding it too (BSD and Windows semantics of
// SO_REUSEADDR), so a picked port is free again until the server binds
// it, and another process can take it in between.
const holdsPortsWhileBinding = false

// reservePort listens on ip:port (port 0: a free one) and returns the
// port and the function that closes the listener.
func reservePort(ip string, port int) (int, func(), error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return 0, nil, err
	}
	return l.Addr().(*net.TCPAddr).Port, once(func() { _ = l.Close() }), nil
}
