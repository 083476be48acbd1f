// Command lambdaworker is the Lambda function the aws package's tests run
// under the Runtime Interface Emulator: aws.ServeLambda with a handler
// whose behaviour each task's payload chooses.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/aws"
)

// command is a JSON task payload.
type command struct {
	Do   string `json:"do"`
	Data string `json:"data"`
	N    int    `json:"n"`
	MS   int    `json:"ms"`
}

func handle(ctx context.Context, payload []byte) ([]byte, error) {
	if raw, ok := bytes.CutPrefix(payload, []byte("raw:")); ok {
		// A payload that is not JSON comes back reversed, not JSON either.
		out := make([]byte, len(raw))
		for i, b := range raw {
			out[len(raw)-1-i] = b
		}
		return out, nil
	}
	var c command
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("lambdaworker: bad payload: %w", err)
	}
	switch c.Do {
	case "echo":
		return json.Marshal(map[string]any{"echo": c.Data, "pid": os.Getpid()})
	case "digest":
		sum := sha256.Sum256(payload)
		return json.Marshal(map[string]any{"len": len(payload), "sha256": hex.EncodeToString(sum[:])})
	case "big":
		return bytes.Repeat([]byte{'z', 0xff}, c.N/2), nil
	case "sleep":
		select {
		case <-time.After(time.Duration(c.MS) * time.Millisecond):
			return []byte(strconv.Itoa(os.Getpid())), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "waitfile":
		// Holds its sandbox until the test creates the file c.Data.
		for {
			if _, err := os.Stat(c.Data); err == nil {
				return []byte(`"released"`), nil
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	case "error":
		return nil, errors.New(c.Data)
	case "typed":
		return nil, &backends.FunctionError{Type: "bad-input", Message: c.Data}
	case "refuse":
		return nil, fmt.Errorf("lambdaworker: not now: %w", backends.ErrNotStarted)
	case "panic":
		panic(c.Data)
	case "exit":
		os.Exit(3)
	case "kill":
		// What Lambda does to a function over its memory size.
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	return nil, fmt.Errorf("lambdaworker: unknown command %q", c.Do)
}

func main() {
	if err := aws.ServeLambda(context.Background(), handle); err != nil {
		fmt.Fprintln(os.Stderr, "lambdaworker:", err)
		os.Exit(1)
	}
}
