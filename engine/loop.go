package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/galeproject/gale/backends"
)

// LoopConfig configures a driver loop (Loop). The loop knows tasks only
// as stages of a TaskGraph and payloads: what an attempt's payload holds
// and what its answer means are the front end's, through Payload and
// Result.
type LoopConfig struct {
	// Job names the job in task IDs (JOB/stage-S/task-T/attempt-A).
	Job string
	// Graph is the job's stages. Required.
	Graph TaskGraph
	// Plan describes the job in its job_start event.
	Plan PlanInfo
	// Backend runs the attempts. Required.
	Backend backends.Backend
	// BackendName names the backend in events.
	BackendName string
	// Concurrency bounds the attempts in flight. Default 1.
	Concurrency int
	// MaxAttempts bounds the failed attempts per task. Default 3.
	MaxAttempts int
	// TaskTimeout, Speculation, Clock and TickInterval are Config's.
	TaskTimeout  time.Duration
	Speculation  Speculation
	Clock        Clock
	TickInterval time.Duration
	// TimeoutFix tells the user how to give tasks longer, added to the
	// error of a job that failed because attempts timed out. Default:
	// Gale's option and flag.
	TimeoutFix string
	// Report is the job's report, which the loop keeps up to date (under
	// its lock) as attempts start and end. Required: NewReport makes one.
	Report *Report
	// Events receives the job's events; nil for none.
	Events *EventLog
	// Progress receives the report after every event; nil for none.
	Progress Progress
	// StageReady, if not nil, is called on the loop's goroutine once per
	// stage, before the stage's first attempt is built, when the stages
	// it depends on are done; it may read their winners (Scheduler). The
	// function it returns, if not nil, runs on a goroutine of its own: it
	// may block on I/O, honouring ctx, and the stage's attempts start
	// when it returns. Its error fails the job.
	StageReady func(stage int) func(ctx context.Context) error
	// Payload builds an attempt's payload. It runs on the loop's
	// goroutine, so it may read the scheduler's winners, and must not
	// block. Its error fails the job. Required.
	Payload func(a Invoke) ([]byte, error)
	// Result reads an attempt's answer; id is the task's ID. It runs on
	// the attempt's goroutine, concurrently with other attempts' Result
	// calls and with the loop. An error is the attempt's failure.
	// Required.
	Result func(ctx context.Context, a Invoke, id string, res backends.Result) (*TaskResult, error)
	// Won, if not nil, is called on the loop's goroutine when an
	// attempt's success has made it its task's winner, after the
	// scheduler applied it; it may keep what it needs of the result (an
	// index of its outputs) and trim the rest.
	Won func(e TaskSucceeded)
}

// Validate reports every problem with c.
func (c LoopConfig) Validate() error {
	var errs []error
	if c.Backend == nil {
		errs = append(errs, errors.New("engine: LoopConfig.Backend is required"))
	}
	if c.Report == nil || c.Payload == nil || c.Result == nil {
		errs = append(errs, errors.New("engine: LoopConfig.Report, Payload and Result are required"))
	}
	if c.Report != nil && len(c.Report.Stages) != len(c.Graph.Stages) {
		errs = append(errs, fmt.Errorf("engine: LoopConfig.Report has %d stages, the graph %d", len(c.Report.Stages), len(c.Graph.Stages)))
	}
	if c.Concurrency < 0 || c.MaxAttempts < 0 || c.TickInterval < 0 {
		errs = append(errs, errors.New("engine: LoopConfig.Concurrency, MaxAttempts and TickInterval must not be negative"))
	}
	if err := c.Speculation.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Loop is the driver loop: it owns a job's scheduler, the goroutine of
// every attempt in flight, their cancellation, retries, backups and
// deadlines, the job's interruption, its events, its progress display and
// the report's bookkeeping. The engine's Run and the Beam runner both run
// their tasks through it; each builds its own payloads and reads its own
// answers. A Loop runs once.
//
//	l, err := NewLoop(cfg)
//	err = l.Run(ctx)        // every attempt's goroutine has ended
//	winners := l.Scheduler() // read the winners, commit the output ...
//	l.Finish(err)           // job_end event, report totals, progress
type Loop struct {
	cfg       LoopConfig
	sched     *Scheduler
	clock     Clock
	sim       *simClock
	throttles *throttleWatch
	attempts  map[attemptRef]*attemptRun // attempts in flight (deadlines.go)
	ready     []stageReadiness           // per stage
	failed    *TaskFailed                // the attempt whose failure failed the job
	// interruption is the job's error once its context ended before it
	// finished (ErrInterrupted); nil otherwise.
	interruption error
}

// stageReadiness is where a stage stands with its StageReady function.
type stageReadiness struct {
	asked   bool     // StageReady was called
	ready   bool     // its returned function, if any, has returned
	waiting []Invoke // attempts built once it returns
}

// NewLoop validates cfg and returns a loop that has started nothing.
func NewLoop(cfg LoopConfig) (*Loop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.TickInterval == 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.TimeoutFix == "" {
		cfg.TimeoutFix = "raise the task timeout (gale.TaskTimeout, --task-timeout on the gale command line)"
	}
	l := &Loop{cfg: cfg, throttles: newThrottleWatch(cfg.Backend), attempts: map[attemptRef]*attemptRun{},
		ready: make([]stageReadiness, len(cfg.Graph.Stages))}
	l.sched = NewGraphScheduler(cfg.Graph, l.schedulerConfig())
	l.clock = l.runClock()
	return l, nil
}

// Scheduler returns the loop's scheduler, to read its winners. It is not
// safe for concurrent use: read it from StageReady or Payload while Run
// runs, or after Run returns.
func (l *Loop) Scheduler() *Scheduler { return l.sched }

// Interruption returns the job's interruption once its context ended
// before it finished (it matches ErrInterrupted), or nil.
func (l *Loop) Interruption() error { return l.interruption }

// stagePrepared is a StageReady function's end, reported to the loop.
type stagePrepared struct {
	stage int
	err   error
}

// Run runs the job's attempts until every stage is done, the job fails or
// ctx ends (the error then matches ErrInterrupted). It returns when every
// goroutine it started has ended.
func (l *Loop) Run(jobCtx context.Context) error {
	ctx, cancel := context.WithCancelCause(jobCtx)
	defer cancel(nil)
	l.sim = readSimClock(l.cfg.Backend)
	ticks, stopTicks := l.clock.NewTicker(l.cfg.TickInterval)
	defer stopTicks()
	results := make(chan any) // Event or stagePrepared
	var wg sync.WaitGroup
	inflight := 0  // attempts launched that have not reported
	preparing := 0 // StageReady functions that have not returned
	// Every goroutine is owned by this loop: it runs until all of them
	// have reported, even after a failure, so none outlives Run.
	defer wg.Wait()
	if l.cfg.Events != nil {
		l.cfg.Events.JobStart(l.cfg.Plan, l.cfg.BackendName, l.cfg.Concurrency, l.cfg.MaxAttempts)
	}
	var jobErr error
	var last Event // the event that produced actions
	l.sched.Step(Tick{Now: l.clock.Now()})
	actions := l.sched.Start()
	// The job's context ending is final, unlike an attempt's failure or
	// deadline: the scheduler hears nothing more (so it retries nothing,
	// launches no backup and starts no stage), the attempts in flight are
	// cancelled, and their outcomes are recorded as interrupted, not as
	// failures. The check runs before every step of the loop: an outcome
	// caused by the cancellation arrives after it, so the scheduler never
	// sees it.
	jobDone := jobCtx.Done()
	checkInterrupted := func() {
		if jobDone == nil || jobCtx.Err() == nil {
			return
		}
		jobDone = nil
		if jobErr == nil && l.interrupt(jobCtx, inflight) {
			jobErr = l.interruption
			actions = nil
		}
		cancel(jobErr)
	}
	// launch builds an attempt of a ready stage and starts it. An attempt
	// whose payload cannot be built fails the job; the scheduler hears
	// nothing more.
	launch := func(a Invoke) {
		payload, err := l.cfg.Payload(a)
		if err != nil {
			if jobErr == nil {
				jobErr = err
			}
			cancel(err)
			l.dropAttempt(a)
			return
		}
		inflight++
		wg.Add(1)
		l.cfg.Report.taskStarted(a.TaskRef)
		l.cfg.Events.TaskStart(a)
		actx := l.attemptLaunched(a)
		go func() {
			defer wg.Done()
			results <- l.invoke(actx, a, payload)
		}()
	}
	for {
		checkInterrupted()
		for _, a := range actions {
			switch a := a.(type) {
			case Invoke:
				l.attemptQueued(ctx, a)
				r := &l.ready[a.Stage]
				if !r.asked {
					r.asked, r.ready = true, true
					if l.cfg.StageReady != nil {
						if prep := l.cfg.StageReady(a.Stage); prep != nil {
							// The stage's I/O runs off the loop; its
							// attempts wait for it.
							r.ready = false
							preparing++
							wg.Add(1)
							go func(stage int) {
								defer wg.Done()
								results <- stagePrepared{stage, prep(ctx)}
							}(a.Stage)
						}
					}
				}
				if !r.ready {
					r.waiting = append(r.waiting, a)
					continue
				}
				launch(a)
			case Cancel:
				l.cancelAttempt(a)
				if a.TimedOut {
					last = TaskFailed{TaskRef: a.TaskRef, Attempt: a.Attempt, Err: fmt.Errorf("%w: %s", ErrTaskTimeout, a.Reason)}
				}
			case StageDone:
				l.cfg.Report.stageDone(a.Stage, l.sched)
				l.cfg.Events.StageEnd(a.Stage)
			case JobDone:
			case JobFailed:
				if jobErr == nil {
					jobErr = l.timeoutHint(a.Err)
					if f, ok := last.(TaskFailed); ok {
						l.failed = &f
					}
				}
				cancel(a.Err)
			}
		}
		if l.cfg.Progress != nil {
			l.cfg.Progress.Update(l.cfg.Report)
		}
		if inflight == 0 && preparing == 0 {
			break
		}
		var msg any
		select {
		case msg = <-results:
		case <-jobDone:
			actions = nil
			continue
		case <-ticks:
			actions = nil
			checkInterrupted()
			if jobErr == nil {
				last = nil
				actions = l.sched.Step(Tick{Now: l.clock.Now()})
			}
			continue
		}
		checkInterrupted()
		actions = nil
		if p, ok := msg.(stagePrepared); ok {
			preparing--
			r := &l.ready[p.stage]
			r.ready = true
			if p.err != nil && jobErr == nil {
				jobErr = p.err
				cancel(p.err)
			}
			for _, a := range r.waiting {
				if jobErr != nil {
					// The job is failing or interrupted: the attempt
					// never starts, and the scheduler hears no more.
					l.dropAttempt(a)
					continue
				}
				launch(a)
			}
			r.waiting = nil
			continue
		}
		inflight--
		ev := msg.(Event)
		if l.interruption != nil && jobErr == l.interruption {
			l.interruptedAttemptEnded(ev)
			continue
		}
		abandoned := l.attemptEnded(ev)
		switch e := ev.(type) {
		case TaskSucceeded:
			if abandoned {
				break
			}
			l.cfg.Report.taskSucceeded(e)
			l.cfg.Events.TaskEnd(e)
		case TaskFailed:
			if abandoned {
				break
			}
			l.cfg.Report.taskFailed(e)
			l.cfg.Events.TaskFailed(e, ctx.Err() != nil)
		}
		if n, total := l.throttles.check(); n > 0 {
			l.cfg.Events.Emit(map[string]any{"event": "throttled", "count": n, "total": total})
		}
		if jobErr != nil {
			continue
		}
		last = nil
		actions = l.sched.Step(Tick{Now: l.clock.Now()})
		if l.sched.Failed() {
			continue
		}
		last = ev
		actions = append(actions, l.sched.Step(ev)...)
		if e, ok := ev.(TaskSucceeded); ok && l.cfg.Won != nil && l.sched.Winner(e.TaskRef) == e.Result {
			l.cfg.Won(e)
		}
	}
	if jobErr == nil && ctx.Err() != nil {
		jobErr = context.Cause(ctx)
	}
	if jobErr == nil && l.sched.StagesLeft() > 0 {
		jobErr = errors.New("engine: scheduler stopped with stages left")
	}
	return jobErr
}

// invoke runs one attempt on the backend and reads its answer.
func (l *Loop) invoke(ctx context.Context, a Invoke, payload []byte) Event {
	id := fmt.Sprintf("%s/stage-%d/task-%d/attempt-%d", l.cfg.Job, a.Stage, a.Task, a.Attempt)
	start := time.Now()
	task := backends.Task{ID: id, Payload: payload}
	if st := l.cfg.Graph.Stages[a.Stage]; st.Gang {
		task.Gang = st.Tasks
	}
	res, err := l.cfg.Backend.Invoke(ctx, task)
	if err == nil || !errors.Is(err, backends.ErrNotStarted) {
		l.cfg.Report.invoked(time.Since(start).Seconds())
	}
	if err != nil {
		return TaskFailed{TaskRef: a.TaskRef, Attempt: a.Attempt, Err: err, NotStarted: errors.Is(err, backends.ErrNotStarted)}
	}
	r, err := l.cfg.Result(ctx, a, id, res)
	if err != nil {
		return TaskFailed{TaskRef: a.TaskRef, Attempt: a.Attempt, Err: err}
	}
	return TaskSucceeded{TaskRef: a.TaskRef, Attempt: a.Attempt, Result: r}
}

// interrupt records that the job's context ended while running attempts
// were in flight, unless a task's failure had already failed the job: the
// error, the report's flag and a job_interrupted event. It reports whether
// it recorded the interruption now.
func (l *Loop) interrupt(ctx context.Context, running int) bool {
	if l.interruption != nil {
		return false
	}
	l.interruption = interrupted(ctx)
	l.cfg.Report.interrupted(context.Cause(ctx))
	l.cfg.Events.JobInterrupted(context.Cause(ctx), running)
	return true
}

// Finish records the job's end once the caller is done with it (its
// output committed or abandoned): the report's totals (backups, throttled
// invocations, simulated time, cost, end time), the job_end event with
// err, and the progress display's last update.
func (l *Loop) Finish(err error) {
	r := l.cfg.Report
	r.speculated(l.sched.Stats())
	r.simulated(l.sim)
	r.priced(backends.TraitsOf(l.cfg.Backend))
	r.mu.Lock()
	r.End = time.Now()
	r.Throttled = l.throttles.total()
	r.mu.Unlock()
	l.cfg.Events.JobEnd(r, err, l.failed)
	if l.cfg.Progress != nil {
		l.cfg.Progress.Finish(r, err)
	}
}

// timeoutHint adds the fix to a job failure caused by timeouts.
func (l *Loop) timeoutHint(err error) error {
	if !errors.Is(err, ErrTaskTimeout) {
		return err
	}
	return fmt.Errorf("%w; if the task needs longer, %s", err, l.cfg.TimeoutFix)
}
