package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc reads the memory and CPU figures of the measured process: this one
// (pid 0, the in-process stack) or another one (--pid).
type proc struct {
	pid int
}

func (p proc) path(file string) string {
	if p.pid == 0 {
		return "/proc/self/" + file
	}
	return fmt.Sprintf("/proc/%d/%s", p.pid, file)
}

// memory returns VmRSS and VmHWM in bytes.
func (p proc) memory() (rss, hwm int64, err error) {
	b, err := os.ReadFile(p.path("status"))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			rss = parseKB(line)
		case strings.HasPrefix(line, "VmHWM:"):
			hwm = parseKB(line)
		}
	}
	return rss, hwm, nil
}

// anonymous returns RssAnon in bytes: the memory the process itself
// takes (heap, stacks, caches), without the pages of its executable and
// other files mapped, which count in VmRSS as far as the page cache lets
// the kernel map them (a binary just built maps more of itself).
func (p proc) anonymous() (int64, error) {
	b, err := os.ReadFile(p.path("status"))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "RssAnon:") {
			return parseKB(line), nil
		}
	}
	return 0, fmt.Errorf("no RssAnon in %s", p.path("status"))
}

func parseKB(line string) int64 {
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(f[1], 10, 64)
	return n * 1024
}

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// cpu returns user+system CPU time consumed so far.
func (p proc) cpu() (time.Duration, error) {
	if p.pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, err
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
	}
	b, err := os.ReadFile(p.path("stat"))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: count after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected %s", p.path("stat"))
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected %s", p.path("stat"))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// rssSampler records the highest VmRSS seen per phase, sampling every
// interval until stopped.
type rssSampler struct {
	p    proc
	mu   sync.Mutex
	peak int64
	stop chan struct{}
	done chan struct{}
}

func startSampler(p proc, every time.Duration) *rssSampler {
	s := &rssSampler{p: p, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	rss, _, err := s.p.memory()
	if err != nil {
		return
	}
	s.mu.Lock()
	if rss > s.peak {
		s.peak = rss
	}
	s.mu.Unlock()
}

// takePeak returns the peak since the previous call and starts a new phase.
func (s *rssSampler) takePeak() int64 {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peak
	s.peak = 0
	return p
}

func (s *rssSampler) close() {
	close(s.stop)
	<-s.done
}
