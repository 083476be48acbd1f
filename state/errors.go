package state

import (
	"errors"
	"fmt"

	"github.com/galeproject/gale/state/internal/wire"
)

// Errors reported by calls. A *CallError returned by a call matches the
// sentinel of its kind with errors.Is.
var (
	// ErrUnknownType: the server knows no object type by that name (a
	// user-defined type must be registered in the server's Registry).
	ErrUnknownType = errors.New("state: unknown object type")
	// ErrUnknownMethod: the object's type has no method by that name.
	ErrUnknownMethod = errors.New("state: unknown method")
	// ErrBadArgs: the arguments do not match the method's parameters.
	ErrBadArgs = errors.New("state: bad arguments")
	// ErrMethodFailed: a user-defined method returned an error.
	ErrMethodFailed = errors.New("state: method failed")
	// ErrPanic: a user-defined method panicked; the object was restored to
	// its state before the call.
	ErrPanic = errors.New("state: method panicked")
	// ErrCancelled: a blocking call was abandoned by its caller.
	ErrCancelled = errors.New("state: call cancelled")
	// ErrMismatch: the call's creation parameters (barrier parties,
	// semaphore permits, latch count, persistence) differ from the object's.
	ErrMismatch = errors.New("state: object parameters mismatch")
	// ErrAlreadySet: Future.Set on a future that already holds a value.
	ErrAlreadySet = errors.New("state: future already set")
	// ErrShutdown: the server is shutting down.
	ErrShutdown = errors.New("state: server shutting down")
	// ErrOutOfRange: an index outside a list or byte array.
	ErrOutOfRange = errors.New("state: index out of range")
	// ErrPersist: persistence is unavailable for this object or failed; the
	// call may have been applied in memory.
	ErrPersist = errors.New("state: persistence failed")
	// ErrInternal: the server failed to run the call.
	ErrInternal = errors.New("state: internal server error")
	// ErrBroken: the barrier's generation was broken by a departing party.
	ErrBroken = errors.New("state: barrier broken")

	// ErrAuth: the server refused the client's token.
	ErrAuth = errors.New("state: authentication refused")
	// ErrUnavailable: a server could not be reached.
	ErrUnavailable = errors.New("state: server unavailable")
	// ErrConnLost: the connection broke while the call was in flight; the
	// call may or may not have run on the server.
	ErrConnLost = errors.New("state: connection lost")
	// ErrFrameTooLarge: a request or response exceeds the frame limit.
	ErrFrameTooLarge = errors.New("state: frame too large")
	// ErrClosed: the client or server is closed.
	ErrClosed = errors.New("state: closed")
)

var codeErrs = map[uint8]error{
	wire.CodeUnknownType:   ErrUnknownType,
	wire.CodeUnknownMethod: ErrUnknownMethod,
	wire.CodeBadArgs:       ErrBadArgs,
	wire.CodeMethodError:   ErrMethodFailed,
	wire.CodePanic:         ErrPanic,
	wire.CodeCancelled:     ErrCancelled,
	wire.CodeMismatch:      ErrMismatch,
	wire.CodeAlreadySet:    ErrAlreadySet,
	wire.CodeShutdown:      ErrShutdown,
	wire.CodeInternal:      ErrInternal,
	wire.CodeOutOfRange:    ErrOutOfRange,
	wire.CodePersist:       ErrPersist,
	wire.CodeBroken:        ErrBroken,
}

// CallError is a call's failure reported by the server.
type CallError struct {
	// Server is the address of the server that answered.
	Server string
	// Type, Key and Method name the call.
	Type, Key, Method string
	// Code is the protocol's reply code.
	Code uint8
	// Message is the server's explanation.
	Message string
}

// Error describes the failed call and the server's message.
func (e *CallError) Error() string {
	return fmt.Sprintf("state: %s(%q).%s on %s: %s", e.Type, e.Key, e.Method, e.Server, e.Message)
}

// Is matches the sentinel error of e's code.
func (e *CallError) Is(target error) bool { return codeErrs[e.Code] == target }

// status is a reply code with its message, produced on the server.
type status struct {
	code uint8
	msg  string
}

func fail(code uint8, format string, args ...any) *status {
	return &status{code: code, msg: fmt.Sprintf(format, args...)}
}
