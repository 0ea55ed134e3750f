package devserver

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// holdsPortsWhileBinding says whether a picked port is held until the
// server binds it. On Linux it is: by a socket bound to it with
// SO_REUSEADDR that never listens. The kernel gives such a port to no
// bind to port 0 (another FreePorts, another test's server) and to no
// outgoing connection's local end, and refuses it to a bind without
// SO_REUSEADDR; Go's listeners set SO_REUSEADDR, and may bind and listen
// beside a socket that does not listen, so the server's own bind
// succeeds while the port is held. Only a program that binds that very
// port with SO_REUSEADDR, and listens before the server does, can still
// take it.
const holdsPortsWhileBinding = true

// reservePort binds a TCP socket to ip:port (port 0: a free one) without
// listening, and returns the port and the function that closes it.
func reservePort(ip string, port int) (int, func(), error) {
	addr := net.ParseIP(ip)
	if addr == nil {
		return 0, nil, fmt.Errorf("%q is not an IP address", ip)
	}
	family := syscall.AF_INET6
	var sa syscall.Sockaddr
	if a4 := addr.To4(); a4 != nil {
		family = syscall.AF_INET
		sa = &syscall.SockaddrInet4{Port: port, Addr: [4]byte(a4)}
	} else {
		sa = &syscall.SockaddrInet6{Port: port, Addr: [16]byte(addr.To16())}
	}
	opErr := func(call string, err error) error {
		return &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: addr, Port: port}, Err: os.NewSyscallError(call, err)}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, opErr("socket", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		_ = syscall.Close(fd)
		return 0, nil, opErr("setsockopt", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		_ = syscall.Close(fd)
		return 0, nil, opErr("bind", err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		_ = syscall.Close(fd)
		return 0, nil, opErr("getsockname", err)
	}
	switch a := bound.(type) {
	case *syscall.SockaddrInet4:
		port = a.Port
	case *syscall.SockaddrInet6:
		port = a.Port
	}
	return port, once(func() { _ = syscall.Close(fd) }), nil
}
