package devserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// The server's services bind the ports given in their config while the
// server is built, so Start picks free ones first. Between the pick and
// the bind another process could take one; where the system allows
// (holdsPortsWhileBinding), each picked port is held in between instead
// of let go: see reservePort.

// holdFreePorts returns n distinct free TCP ports on ip, each with the
// function that lets it go. Where ports cannot be held while the server
// binds them they are already free again (all are kept until all are
// picked, so that none is picked twice), and the functions do nothing.
func holdFreePorts(ip string, n int) ([]int, []func(), error) {
	ports := make([]int, 0, n)
	releases := make([]func(), 0, n)
	for range n {
		port, release, err := reservePort(ip, 0)
		if err != nil {
			releaseAll(releases)
			return nil, nil, fmt.Errorf("finding a free port: %w", err)
		}
		ports = append(ports, port)
		releases = append(releases, release)
	}
	if !holdsPortsWhileBinding {
		releaseAll(releases)
		for i := range releases {
			releases[i] = func() {}
		}
	}
	return ports, releases, nil
}

// holdPort checks that a given port can be bound on ip, and holds it
// where that is possible, until the returned function is called.
func holdPort(ip string, port int) (func(), error) {
	_, release, err := reservePort(ip, port)
	if err != nil {
		return nil, err
	}
	if !holdsPortsWhileBinding {
		release()
		return func() {}, nil
	}
	// The hold itself fails on another's listener; this is the bind the
	// server will make (Go's, with its options), beside the hold.
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		release()
		return nil, err
	}
	_ = l.Close()
	return release, nil
}

func releaseAll(releases []func()) {
	for _, release := range releases {
		release()
	}
}

// once makes release safe to call more than once.
func once(release func()) func() {
	var o sync.Once
	return func() { o.Do(release) }
}

// takenPort is the port of a listener that could not be bound because
// it was in use, when err says so.
func takenPort(err error) (int, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "listen" || !errors.Is(err, syscall.EADDRINUSE) {
		return 0, false
	}
	addr, ok := op.Addr.(*net.TCPAddr)
	if !ok || addr.Port == 0 {
		return 0, false
	}
	return addr.Port, true
}
