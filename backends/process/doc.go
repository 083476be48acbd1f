// Package process implements the process backend: tasks run in a pool of
// worker processes of the program's own binary, the laptop stand-in for a
// function platform. It gives real isolation (a crash or os.Exit in user
// code fails one task, never the driver), warm reuse and cold starts, the
// way a FaaS platform's instances do.
//
// Workers start on demand, up to Config.Concurrency, each serving one task
// at a time; a worker is reused while warm and retired after
// Config.IdleTimeout without a task. A worker is the same binary (or
// Config.Path) started with Config.Args and WorkerEnv=WorkerEnvValue in its
// environment; the program's worker entry (gale.Run or
// gale.ServeWorkerIfRequested in the gale package) sees that and calls
// ServeInherited instead of running its driver.
//
// The backend and a worker talk over two pipes passed as inherited file
// descriptors 3 and 4, in length-prefixed frames (see frame.go). Pipes
// rather than a loopback socket: nothing else on the machine can connect
// to them, there is no port to choose or leak, a round trip costs a few
// microseconds, and the end of the backend's process closes them, so a
// worker notices its parent's death as the end of its task stream and
// exits. Standard output and standard error stay free for user code: the
// backend copies them, line by line and prefixed with the worker's pid, to
// Config.Output.
//
// Usage:
//
//	b, err := process.New(process.DefaultConfig())
//	...
//	defer b.Close()
//	res, err := b.Invoke(ctx, backends.Task{ID: "t1", Payload: payload})
//
// Goroutines: the backend owns a janitor (started with the first worker)
// that retires idle workers, and three goroutines per worker process (its
// result reader, its output copier and its supervisor, which stops, kills
// and reaps it). Close stops every worker and waits for all of them.
// Serve, the worker side, owns a frame reader and the running task and
// waits for both.
//
// This package imports backends and the standard library only.
package process
