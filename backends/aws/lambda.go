package aws

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/objstore"
)

// Lambda's limits and prices.
const (
	// MaxSyncPayload is Lambda's limit on a synchronous (RequestResponse)
	// invocation's request and response: "6 MB", enforced as 6,291,456
	// bytes (RequestEntityTooLargeException names that figure).
	MaxSyncPayload = 6 << 20
	// MaxAsyncPayload is the request limit Gale applies to asynchronous
	// (Event) invocations: Lambda's long-standing 256 KB quota.
	MaxAsyncPayload = 256 << 10
	// MaxTimeout is the longest a Lambda invocation may run.
	MaxTimeout = 15 * time.Minute
	// MaxMemoryMiB and MinMemoryMiB bound a function's memory.
	MaxMemoryMiB = 10240
	MinMemoryMiB = 128
	// MiBPerVCPU is the memory at which Lambda gives a function one full
	// vCPU; CPU is allocated in proportion to memory, up to 6 vCPUs at
	// 10,240 MiB (Lambda developer guide, "Configuring function memory").
	MiBPerVCPU = 1769
	// DefaultConcurrency is Lambda's default account-wide concurrency
	// quota per region.
	DefaultConcurrency = 1000

	// Prices in US dollars, from https://aws.amazon.com/lambda/pricing/
	// (US East (N. Virginia), first duration tier): $0.0000166667 per
	// GB-second on x86_64, $0.0000133334 on arm64, and $0.20 per million
	// requests.
	PricePerGBSecondX86   = 0.0000166667
	PricePerGBSecondArm64 = 0.0000133334
	PricePerRequest       = 0.20 / 1e6
)

// Errors of the Lambda backend. Each is wrapped with the function, the task
// and the fix; the ones for invocations that certainly did not run also
// wrap backends.ErrNotStarted.
var (
	// ErrThrottled: Lambda kept answering 429 TooManyRequestsException
	// after LambdaConfig.MaxThrottleRetries retries.
	ErrThrottled = errors.New("aws: Lambda throttled the invocation")
	// ErrNotDeployed: the function (or its qualifier) does not exist.
	ErrNotDeployed = errors.New("aws: Lambda function not found")
	// ErrPayloadTooLarge: the task payload exceeds Lambda's limit and no
	// staging store is configured.
	ErrPayloadTooLarge = errors.New("aws: task payload exceeds Lambda's payload limit")
	// ErrNoStaging: an operation needs LambdaConfig.Staging.
	ErrNoStaging = errors.New("aws: no staging store configured")
	// ErrLostResult: an asynchronous invocation's result did not appear
	// in time (the runtime failed, or Lambda dropped the event).
	ErrLostResult = errors.New("aws: asynchronous result did not appear")
)

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$`)

// LambdaConfig configures the Lambda backend: which function to invoke and
// how, plus what `gale deploy` creates (memory, timeout, role,
// architecture). Zero fields take the defaults DefaultLambdaConfig lists.
type LambdaConfig struct {
	// Region is the function's AWS region, e.g. "eu-west-1". Empty takes
	// the SDK's chain (AWS_REGION, the profile's region); with a custom
	// Endpoint and no region anywhere, "us-east-1".
	Region string
	// Endpoint overrides Lambda's endpoint (the client's BaseEndpoint),
	// e.g. "http://127.0.0.1:9001" for the Runtime Interface Emulator.
	// Empty uses AWS (or AWS_ENDPOINT_URL_LAMBDA if set).
	Endpoint string
	// Profile selects a profile of the shared config files; empty takes
	// AWS_PROFILE or "default".
	Profile string
	// Function is the function's name or ARN. Default "gale".
	Function string
	// Qualifier is a version or alias to invoke; empty invokes $LATEST.
	Qualifier string
	// MemoryMiB is the function's memory, 128 to 10,240 MiB; CPU grows
	// with it (1 vCPU at 1,769 MiB). Default 1769.
	MemoryMiB int
	// Timeout is the function's timeout, at most 15 minutes. Default 5
	// minutes.
	Timeout time.Duration
	// Concurrency bounds the invocations in flight from this client.
	// Default 1000, Lambda's default regional quota.
	Concurrency int
	// Role is the ARN of the function's execution role, needed by
	// `gale deploy` to create the function.
	Role string
	// Architecture is "x86_64" or "arm64" (the binary gale deploy builds
	// and the price). Default "x86_64".
	Architecture string
	// Staging is an s3://bucket/prefix URL where payloads too large for a
	// synchronous invocation, results too large to return and the results
	// of asynchronous invocations are stored. Empty: large payloads fail
	// with ErrPayloadTooLarge and InvokeAsync is unavailable. The
	// function's role must be allowed to read and write there.
	Staging string
	// StagingS3 configures the client of the staging store. Its Endpoint,
	// Region and PathStyle also travel to the worker, which opens the
	// store with its own credentials.
	StagingS3 S3Config
	// MaxThrottleRetries is how many times Invoke retries an invocation
	// Lambda throttled (HTTP 429) before it gives up with ErrThrottled.
	// Default 8; negative means never retry.
	MaxThrottleRetries int
	// ThrottleBackoff is the first retry's backoff; each further retry
	// doubles it up to 10 seconds, with jitter (backends.Backoff).
	// Default 100 ms.
	ThrottleBackoff time.Duration
	// AsyncPoll is how often Wait looks for an asynchronous result.
	// Default 250 ms.
	AsyncPoll time.Duration
	// AsyncResultTimeout is how long Wait waits for an asynchronous result
	// before it reports ErrLostResult. Default 3 × Timeout + 1 minute
	// (Lambda may retry a failed event twice).
	AsyncResultTimeout time.Duration
}

// DefaultLambdaConfig returns the defaults: function "gale", 1769 MiB (one
// vCPU), a 5-minute timeout, 1000 invocations in flight, x86_64, 8 retries
// of a throttled invocation starting at 100 ms.
func DefaultLambdaConfig() LambdaConfig {
	return LambdaConfig{
		Function:           "gale",
		MemoryMiB:          MiBPerVCPU,
		Timeout:            5 * time.Minute,
		Concurrency:        DefaultConcurrency,
		Architecture:       "x86_64",
		MaxThrottleRetries: 8,
		ThrottleBackoff:    100 * time.Millisecond,
		AsyncPoll:          250 * time.Millisecond,
	}
}

func (c LambdaConfig) withDefaults() LambdaConfig {
	d := DefaultLambdaConfig()
	if c.Function == "" {
		c.Function = d.Function
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = d.MemoryMiB
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.Architecture == "" {
		c.Architecture = d.Architecture
	}
	if c.MaxThrottleRetries == 0 {
		c.MaxThrottleRetries = d.MaxThrottleRetries
	} else if c.MaxThrottleRetries < 0 {
		c.MaxThrottleRetries = 0
	}
	if c.ThrottleBackoff == 0 {
		c.ThrottleBackoff = d.ThrottleBackoff
	}
	if c.AsyncPoll == 0 {
		c.AsyncPoll = d.AsyncPoll
	}
	if c.AsyncResultTimeout == 0 {
		c.AsyncResultTimeout = 3*c.Timeout + time.Minute
	}
	return c
}

// Validate reports every problem with c at once. Zero fields are valid.
func (c LambdaConfig) Validate() error {
	var errs []error
	if c.Region != "" && !regionRE.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("region %q is not an AWS region name such as \"eu-west-1\"", c.Region))
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoint %q is not an http:// or https:// URL", c.Endpoint))
		}
	}
	if strings.ContainsAny(c.Function, " /") && !strings.HasPrefix(c.Function, "arn:") {
		errs = append(errs, fmt.Errorf("function %q is not a function name or ARN", c.Function))
	}
	if c.MemoryMiB != 0 && (c.MemoryMiB < MinMemoryMiB || c.MemoryMiB > MaxMemoryMiB) {
		errs = append(errs, fmt.Errorf("memory_mib %d is outside Lambda's range %d to %d", c.MemoryMiB, MinMemoryMiB, MaxMemoryMiB))
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout || (c.Timeout != 0 && c.Timeout < time.Second) {
		errs = append(errs, fmt.Errorf("timeout %s is outside Lambda's range 1s to 15m", c.Timeout))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d is negative (0 takes the default %d)", c.Concurrency, DefaultConcurrency))
	}
	if c.Role != "" && !strings.HasPrefix(c.Role, "arn:") {
		errs = append(errs, fmt.Errorf("role %q is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", c.Role))
	}
	switch c.Architecture {
	case "", "x86_64", "arm64":
	default:
		errs = append(errs, fmt.Errorf("architecture %q is not x86_64 or arm64", c.Architecture))
	}
	if c.Staging != "" {
		if _, _, err := parseS3URL(c.Staging); err != nil {
			errs = append(errs, fmt.Errorf("staging: %w", err))
		}
		sc := c.StagingS3
		if sc.Keys == "" {
			sc.Keys = "staging_s3."
		}
		if err := sc.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("staging: %w", err))
		}
	}
	if c.ThrottleBackoff < 0 || c.AsyncPoll < 0 || c.AsyncResultTimeout < 0 {
		errs = append(errs, errors.New("throttle_backoff, async_poll and async_result_timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("aws: invalid Lambda config: %w", err)
	}
	return nil
}

// parseS3URL splits s3://bucket/prefix.
func parseS3URL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" {
		return "", "", fmt.Errorf("%q is not an s3://bucket/prefix URL", s)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

// LambdaStats counts what a Lambda backend did.
type LambdaStats struct {
	// Invocations is the number of Invoke requests sent to Lambda,
	// retries included.
	Invocations int64
	// Throttled is the number of 429 TooManyRequestsException answers,
	// each followed by a backoff and a retry or, after the last one, by
	// ErrThrottled.
	Throttled int64
	// GaveUp is the number of tasks that failed with ErrThrottled.
	GaveUp int64
	// StagedPayloads and StagedResults count payloads and results that
	// went through the staging store because of their size.
	StagedPayloads, StagedResults int64
}

// Lambda is a backends.Backend that runs each task as one invocation of a
// Lambda function through aws-sdk-go-v2. It is safe for concurrent use.
//
// Invoke is a synchronous RequestResponse invocation; InvokeAsync and Wait
// are the asynchronous (Event) form, whose results come back through the
// staging store. The function must be a Gale worker: a Gale program
// deployed with `gale deploy --backend aws`, whose bootstrap reaches
// ServeLambda.
type Lambda struct {
	cfg       LambdaConfig
	client    *lambda.Client
	staging   *S3    // nil without cfg.Staging
	storeURL  string // staging URL with client options, for workers
	slots     chan struct{}
	where     string // "function NAME in REGION" or "... at ENDPOINT", for messages
	closed    atomic.Bool
	closeOnce sync.Once

	invocations, throttled, gaveUp, stagedIn, stagedOut atomic.Int64
}

var (
	_ backends.Backend   = (*Lambda)(nil)
	_ backends.Describer = (*Lambda)(nil)
)

// NewLambda returns a Lambda backend. It loads the SDK's configuration
// (credentials chain, region, endpoint) and opens the staging store if one
// is configured, but sends no request: a function that is not deployed or
// credentials that do not work show up on the first Invoke.
func NewLambda(ctx context.Context, cfg LambdaConfig) (*Lambda, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	awsCfg, err := loadAWSConfig(ctx, cfg.Region, cfg.Profile)
	if err != nil {
		return nil, fmt.Errorf("aws: Lambda function %s: %w", cfg.Function, err)
	}
	endpoint := cfg.Endpoint
	if endpoint == "" && awsCfg.BaseEndpoint != nil {
		endpoint = *awsCfg.BaseEndpoint
	}
	if awsCfg.Region == "" {
		if endpoint == "" {
			return nil, fmt.Errorf("aws: Lambda function %s: no AWS region: set AWS_REGION or region in the backends.aws section of the config", cfg.Function)
		}
		awsCfg.Region = "us-east-1" // stand-ins ignore it, but requests are signed with one
	}
	l := &Lambda{cfg: cfg, slots: make(chan struct{}, cfg.Concurrency)}
	l.where = fmt.Sprintf("function %s in %s", cfg.Function, awsCfg.Region)
	if endpoint != "" {
		l.where = fmt.Sprintf("function %s at %s", cfg.Function, endpoint)
	}
	l.client = lambda.NewFromConfig(awsCfg, func(o *lambda.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(cfg.Endpoint)
		}
		o.APIOptions = append(o.APIOptions, addCaptureRaw)
	})
	if cfg.Staging != "" {
		bucket, prefix, _ := parseS3URL(cfg.Staging)
		// The staging bucket is taken to be in the function's region
		// unless staging_s3 says otherwise, and messages name the keys
		// that set it.
		sc := cfg.StagingS3
		if sc.Region == "" {
			sc.Region = awsCfg.Region
		}
		if sc.Keys == "" {
			sc.Keys = "backends.aws.staging_s3."
		}
		if l.staging, err = NewS3(ctx, sc, bucket, prefix); err != nil {
			return nil, fmt.Errorf("aws: Lambda staging store: %w", err)
		}
		q := url.Values{}
		if e := sc.Endpoint; e != "" {
			q.Set("endpoint", e)
		}
		if r := sc.Region; r != "" {
			q.Set("region", r)
		}
		if sc.PathStyle {
			q.Set("path_style", "true")
		}
		l.storeURL = strings.TrimSuffix(cfg.Staging, "/")
		if len(q) > 0 {
			l.storeURL += "?" + q.Encode()
		}
	}
	return l, nil
}

// loadAWSConfig loads the SDK's shared configuration.
func loadAWSConfig(ctx context.Context, region, profile string) (sdkaws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	c, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return c, fmt.Errorf("load AWS configuration (check AWS_PROFILE, AWS_CONFIG_FILE and the files they name): %w", err)
	}
	return c, nil
}

// Config returns the backend's configuration, defaults filled in.
func (l *Lambda) Config() LambdaConfig { return l.cfg }

// Client returns the underlying SDK client.
func (l *Lambda) Client() *lambda.Client { return l.client }

// Stats returns what the backend has done so far.
func (l *Lambda) Stats() LambdaStats {
	return LambdaStats{Invocations: l.invocations.Load(), Throttled: l.throttled.Load(), GaveUp: l.gaveUp.Load(),
		StagedPayloads: l.stagedIn.Load(), StagedResults: l.stagedOut.Load()}
}

// Traits implements backends.Describer.
func (l *Lambda) Traits() backends.Traits { return l.cfg.Traits() }

// Traits describes the platform this configuration deploys and invokes.
func (c LambdaConfig) Traits() backends.Traits {
	c = c.withDefaults()
	price := PricePerGBSecondX86
	if c.Architecture == "arm64" {
		price = PricePerGBSecondArm64
	}
	return backends.Traits{
		Name:             "aws",
		MaxConcurrency:   c.Concurrency,
		MemoryMiB:        c.MemoryMiB,
		VCPUs:            float64(c.MemoryMiB) / MiBPerVCPU,
		MaxPayloadBytes:  MaxSyncPayload,
		Timeout:          c.Timeout,
		PricePerGBSecond: price,
		PricePerRequest:  PricePerRequest,
	}
}

// Close implements backends.Backend. It is idempotent; the backend owns no
// goroutines, and invocations in flight finish on their own.
func (l *Lambda) Close() error {
	l.closeOnce.Do(func() { l.closed.Store(true) })
	return nil
}

// Invoke implements backends.Backend with a synchronous (RequestResponse)
// invocation. A payload too large for Lambda's 6 MB request limit goes
// through the staging store, as does a result too large to return; without
// a staging store such a task fails with ErrPayloadTooLarge before
// anything is sent. A throttled invocation (HTTP 429) is retried with
// backoff up to MaxThrottleRetries times, then fails with ErrThrottled.
func (l *Lambda) Invoke(ctx context.Context, t backends.Task) (backends.Result, error) {
	if l.closed.Load() {
		return backends.Result{}, backends.ErrClosed
	}
	select {
	case l.slots <- struct{}{}:
		defer func() { <-l.slots }()
	case <-ctx.Done():
		return backends.Result{}, fmt.Errorf("aws: task %s: waiting for a free slot of %d: %w: %w", t.ID, l.cfg.Concurrency, backends.ErrNotStarted, ctx.Err())
	}
	req, cleanup, err := l.prepare(ctx, t, false, MaxSyncPayload)
	if err != nil {
		return backends.Result{}, err
	}
	defer cleanup()
	body, err := json.Marshal(req)
	if err != nil {
		return backends.Result{}, err
	}
	sent := time.Now()
	out, raw, err := l.send(ctx, t, body, types.InvocationTypeRequestResponse)
	returned := time.Now()
	if err != nil {
		return backends.Result{}, err
	}
	res, err := l.decode(ctx, t, out.FunctionError, out.Payload, raw, req.ResultKey)
	res.Invocation.Sent, res.Invocation.Returned = sent, returned
	return res, err
}

// prepare builds a task's request envelope, staging its payload if it is
// larger than limit allows. cleanup deletes what was staged.
func (l *Lambda) prepare(ctx context.Context, t backends.Task, async bool, limit int) (*request, func(), error) {
	req := &request{V: envelopeVersion, Task: t.ID, Store: l.storeURL, Async: async}
	var staged []string
	cleanup := func() {
		if len(staged) == 0 {
			return
		}
		// Deleting staged objects must happen even if ctx is done; it
		// is bounded by its own deadline.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		for _, k := range staged {
			_ = l.staging.Delete(dctx, k)
		}
	}
	var id string
	if l.staging != nil {
		id = newStageID()
		req.ResultKey = "lambda/" + id + "/out"
	}
	if inlineSize(t.Payload)+envelopeOverhead+len(req.Store)+len(t.ID) <= limit {
		setPayload(t.Payload, &req.Payload, &req.PayloadB64)
		return req, cleanup, nil
	}
	if l.staging == nil {
		return nil, nil, fmt.Errorf("aws: %s: task %s: %w: its %d-byte payload is over the %d-byte limit of a %s invocation; configure a staging store (staging: s3://bucket/prefix in the backends.aws section) or pass large inputs through object storage: %w",
			l.where, t.ID, ErrPayloadTooLarge, len(t.Payload), limit, invocationKind(async), backends.ErrNotStarted)
	}
	req.StagedKey = "lambda/" + id + "/in"
	if err := l.staging.Put(ctx, req.StagedKey, bytes.NewReader(t.Payload)); err != nil {
		return nil, nil, fmt.Errorf("aws: %s: task %s: staging its %d-byte payload: %w: %w", l.where, t.ID, len(t.Payload), err, backends.ErrNotStarted)
	}
	staged = append(staged, req.StagedKey)
	l.stagedIn.Add(1)
	return req, cleanup, nil
}

func invocationKind(async bool) string {
	if async {
		return "asynchronous (Event)"
	}
	return "synchronous (RequestResponse)"
}

func newStageID() string {
	var b [12]byte
	if _, err := io.ReadFull(crand.Reader, b[:]); err != nil {
		panic("aws: crypto/rand failed: " + err.Error()) // cannot happen on supported platforms
	}
	return time.Now().UTC().Format("20060102") + "/" + hex.EncodeToString(b[:])
}

// send invokes the function, retrying throttled invocations with backoff.
func (l *Lambda) send(ctx context.Context, t backends.Task, body []byte, kind types.InvocationType) (*lambda.InvokeOutput, *rawResponse, error) {
	in := &lambda.InvokeInput{FunctionName: &l.cfg.Function, Payload: body, InvocationType: kind}
	if l.cfg.Qualifier != "" {
		in.Qualifier = &l.cfg.Qualifier
	}
	// Retries are Gale's: the SDK's retryer would resend an invocation
	// that may have run (after a connection reset) and would hide
	// throttling from the count.
	noRetry := func(o *lambda.Options) { o.Retryer = sdkaws.NopRetryer{} }
	backoff := backends.Backoff{Base: l.cfg.ThrottleBackoff, Max: maxThrottleBackoff}
	for attempt := 0; ; attempt++ {
		raw := &rawResponse{}
		l.invocations.Add(1)
		out, err := l.client.Invoke(context.WithValue(ctx, rawKey{}, raw), in, noRetry)
		if err == nil {
			return out, raw, nil
		}
		if !isThrottle(err, raw) {
			if raw.status >= 500 && len(raw.body) > 0 {
				// The emulator answers a crashed or panicked runtime with
				// 502 and an errorMessage/errorType body.
				if fe := functionErrorFromBody(raw.body); fe != nil {
					return nil, nil, fmt.Errorf("aws: %s: task %s: %w", l.where, t.ID, fe)
				}
			}
			return nil, nil, l.invokeError(ctx, t, err)
		}
		l.throttled.Add(1)
		if attempt >= l.cfg.MaxThrottleRetries {
			l.gaveUp.Add(1)
			return nil, nil, fmt.Errorf("aws: %s: task %s: %w after %d retries (raise the function's reserved concurrency or the account quota, or lower --workers / concurrency): %w: %w",
				l.where, t.ID, ErrThrottled, attempt, backends.ErrNotStarted, err)
		}
		timer := time.NewTimer(backoff.Wait(attempt+1, 0))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, nil, fmt.Errorf("aws: %s: task %s: throttled, then %w: %w", l.where, t.ID, backends.ErrNotStarted, ctx.Err())
		}
	}
}

// maxThrottleBackoff caps the wait between throttled invocations.
const maxThrottleBackoff = 10 * time.Second

// decode turns a completed invocation's answer into a Result.
func (l *Lambda) decode(ctx context.Context, t backends.Task, functionError *string, body []byte, raw *rawResponse, resultKey string) (backends.Result, error) {
	if functionError != nil && *functionError != "" {
		fe := functionErrorFromBody(body)
		if fe == nil {
			fe = &backends.FunctionError{Backend: "aws", Type: classify(*functionError, string(body)), Message: strings.TrimSpace(string(body))}
		}
		return backends.Result{}, fmt.Errorf("aws: %s: task %s: %w", l.where, t.ID, fe)
	}
	resp, err := decodeResponse(body)
	if err != nil {
		if fe := functionErrorFromBody(body); fe != nil {
			return backends.Result{}, fmt.Errorf("aws: %s: task %s: %w", l.where, t.ID, fe)
		}
		return backends.Result{}, fmt.Errorf("aws: %s: task %s: the function's answer is not a Gale response (is a Gale worker deployed? redeploy with gale deploy --backend aws): %.200q", l.where, t.ID, body)
	}
	res := backends.Result{Invocation: backends.Invocation{
		Start: unixNano(resp.Start), End: unixNano(resp.End), Instance: resp.Instance, Cold: resp.Cold}}
	if resp.Error != nil {
		if resp.Error.NotStarted {
			return res, fmt.Errorf("aws: %s: task %s: the worker refused it: %s: %w", l.where, t.ID, resp.Error.Message, backends.ErrNotStarted)
		}
		return res, fmt.Errorf("aws: %s: task %s: %w", l.where, t.ID,
			&backends.FunctionError{Backend: "aws", Type: resp.Error.Type, Message: resp.Error.Message})
	}
	if resp.StagedKey != "" {
		if l.staging == nil || resp.StagedKey != resultKey {
			return res, fmt.Errorf("aws: %s: task %s: the worker staged its result at %q, which this client did not ask for", l.where, t.ID, resp.StagedKey)
		}
		b, err := readObject(ctx, l.staging, resp.StagedKey)
		if err != nil {
			return res, fmt.Errorf("aws: %s: task %s: reading its staged result: %w", l.where, t.ID, err)
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		_ = l.staging.Delete(dctx, resp.StagedKey)
		cancel()
		l.stagedOut.Add(1)
		res.Payload = b
		return res, nil
	}
	res.Payload = payloadOf(resp.Payload, resp.PayloadB64)
	if res.Payload == nil {
		res.Payload = []byte{}
	}
	return res, nil
}

// readObject reads a whole object.
func readObject(ctx context.Context, s objstore.Store, key string) ([]byte, error) {
	rc, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// ThrottledRetries implements backends.Throttler.
func (l *Lambda) ThrottledRetries() int64 { return l.Stats().Throttled }

var _ backends.Throttler = (*Lambda)(nil)
