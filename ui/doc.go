// Package ui is Gale's job dashboard: a web page that shows jobs live as
// they run, or afterwards from their event logs — the plan as a graph of
// stages and shuffles, each stage's progress, a task timeline with cold
// starts, retries, failures and throttling marked, the concurrency over
// time, the report's totals and a failed job's error.
//
// A Server keeps the jobs it is told about. It is an engine.Monitor: the
// engine hands it each job event (the JSON lines of Config.Events) as the
// driver emits them, and the server folds them into per-job state under a
// lock. Loading an events file (LoadEvents) and a report (AddReport)
// builds the same state after the fact, so the live page and the offline
// one are the same view of the same events.
//
// Browsers read the state through a small JSON API and one server-sent
// event stream per page (/api/stream). The stream never queues events: a
// client's goroutine wakes every Config.Interval, and if anything changed
// since the version it last sent, it sends one message holding the jobs'
// summaries and the selected job's stages and the attempts changed since.
// A slow browser thus gets fewer, larger messages, and the job never waits
// for a browser: the driver's only cost is decoding its event and applying
// it under the lock. The page (static files embedded in the binary, plain
// JavaScript with no build step) draws the timeline and the concurrency
// chart on canvases, so a job of 10,000 tasks is 10,000 rectangles on a
// canvas, not 10,000 DOM nodes.
//
// Security: the server listens on loopback unless Config.AllowRemote is
// set; on loopback it refuses requests whose Host header names another
// host (DNS rebinding). With Config.Token set every request must carry the
// token, as ?token= (the page then keeps it in a same-site cookie).
//
// Usage:
//
//	srv, err := ui.NewServer(ui.Config{})
//	...
//	go srv.Serve(ctx)
//	defer srv.Close()
//	fmt.Println("dashboard:", srv.URL())
//	gale.Run(ctx, p, gale.WithMonitor(srv))
//
// Imports: engine (for the event and report types) and the standard
// library. Goroutines: Serve runs an http.Server, which starts one
// goroutine per connection; Close shuts it down and waits for them,
// stream handlers included.
package ui
