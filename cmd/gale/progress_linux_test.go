package main

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"github.com/galeproject/gale/engine"
)

// openTerminal opens a pseudo-terminal of cols columns and returns its
// terminal side (the side a program's stderr would be).
func openTerminal(t *testing.T, cols uint16) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	ioctl := func(f *os.File, req uintptr, arg unsafe.Pointer) {
		t.Helper()
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(arg)); errno != 0 {
			t.Fatalf("ioctl %#x: %v", req, errno)
		}
	}
	var unlock int32
	ioctl(ptmx, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock))
	var n uint32
	ioctl(ptmx, syscall.TIOCGPTN, unsafe.Pointer(&n))
	pts, err := os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	ws := struct{ row, col, x, y uint16 }{row: 24, col: cols}
	ioctl(pts, syscall.TIOCSWINSZ, unsafe.Pointer(&ws))
	return pts
}

// A terminal too narrow for bars (some report 0 columns) gets progress as
// log lines rather than bars drawn into no room at all.
func TestNarrowTerminalGetsLineProgress(t *testing.T) {
	for _, c := range []struct {
		cols  uint16
		lines bool
	}{{0, true}, {minBarColumns - 1, true}, {120, false}} {
		p := newProgress(openTerminal(t, c.cols))
		_, isLines := p.(*engine.LineProgress)
		if isLines != c.lines {
			t.Errorf("a terminal %d columns wide got %T; want line progress %v", c.cols, p, c.lines)
		}
		if b, ok := p.(*bars); ok {
			b.Finish(nil, nil)
		}
	}
}
