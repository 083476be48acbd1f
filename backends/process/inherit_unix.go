//go:build unix

package process

import (
	"context"
	"fmt"
	"os"
	"syscall"

	"github.com/galeproject/gale/backends"
)

// File descriptors of the task and result pipes in a worker process: the
// first two of exec.Cmd.ExtraFiles. Standard output and standard error
// stay free for the user's code; the backend forwards them.
const (
	taskFD   = 3
	resultFD = 4
)

// ServeInherited serves tasks on the pipes a Backend hands its worker
// processes (file descriptors 3 and 4), until the backend retires the
// process or dies, or ctx is done; see Serve. It is the process backend's
// worker entry: call it when the environment variable WorkerEnv is
// WorkerEnvValue.
func ServeInherited(ctx context.Context, h backends.Handler) error {
	for _, fd := range []int{taskFD, resultFD} {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			return fmt.Errorf("process: file descriptor %d is not open (%v): this process was not started by Gale's process backend; unset %s to run it normally", fd, err, WorkerEnv)
		}
		// Keep the pipes out of programs the user's code starts (a child
		// holding them would hide this worker's exit from the backend),
		// and make them pollable so Serve can stop reading when ctx ends.
		syscall.CloseOnExec(fd)
		if err := syscall.SetNonblock(fd, true); err != nil {
			return fmt.Errorf("process: file descriptor %d: %w", fd, err)
		}
	}
	in := os.NewFile(taskFD, "gale-tasks")
	out := os.NewFile(resultFD, "gale-results")
	defer out.Close()
	defer in.Close()
	return Serve(ctx, h, in, out)
}

// sysProcAttr puts each worker in its own process group, so a terminal's
// Ctrl-C reaches only the driver, which then stops its workers in order.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
