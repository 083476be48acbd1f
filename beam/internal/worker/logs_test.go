package worker

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
)

// TestTaskLog: a task's messages at or above its severity are kept in
// order up to maxLogBytes, the rest counted; messages logged without a
// task's context are not collected.
func TestTaskLog(t *testing.T) {
	tl := &taskLog{min: log.SevInfo}
	ctx := withTaskLog(context.Background(), tl)
	lg := taskLogger{next: discardLogger{}}
	lg.Log(ctx, log.SevDebug, 0, "debug, dropped")
	lg.Log(ctx, log.SevInfo, 0, "first\n")
	lg.Log(ctx, log.SevError, 0, "second")
	lg.Log(context.Background(), log.SevError, 0, "not a task's")
	big := strings.Repeat("x", maxLogBytes/2)
	lg.Log(ctx, log.SevInfo, 0, big)
	lg.Log(ctx, log.SevInfo, 0, big) // past the limit
	es, dropped := tl.result()
	if len(es) != 3 || es[0].Message != "first" || es[1].Message != "second" || es[1].Severity != int(log.SevError) || dropped != 1 {
		t.Fatalf("%d entries, %d dropped; want first, second, the big one, and 1 dropped", len(es), dropped)
	}
	if got := tl.tail(2); !strings.HasPrefix(got, "\n  second\n  xxx") {
		t.Fatalf("tail(2) = %.30q", got)
	}
}

type discardLogger struct{}

func (discardLogger) Log(context.Context, log.Severity, int, string) {}
