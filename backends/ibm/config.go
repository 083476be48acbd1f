package ibm

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Platform facts, for Traits and defaults.
//
// Limits are OpenWhisk's and IBM Cloud Functions' documented defaults
// (https://cloud.ibm.com/docs/openwhisk?topic=openwhisk-limits): 1000
// concurrent activations per namespace (executing plus queued), 5000
// invocations per minute, memory 128–2048 MiB per action, timeout up to
// 600 s for a blocking-or-not action (the blocking wait itself is 60 s),
// 5 MB of parameters and 5 MB of result. CPU is not strictly tied to
// memory (thesis, Table 3.1): 2 GiB is about one guaranteed CPU on an
// Invoker VM of 4 vCPUs and 16 GiB, a 256 MiB container gets at least an
// eighth of a CPU on a full VM and up to 4 when alone.
//
// Prices are IBM Cloud Functions' public list prices
// (https://cloud.ibm.com/functions/learn/pricing): USD 0.000017 per
// GB-second of memory configured, no per-request charge.
const (
	// MaxNamespaceConcurrency is the default limit of concurrent
	// activations per namespace.
	MaxNamespaceConcurrency = 1000
	// MaxPayloadBytes is the largest parameters or result of an activation.
	MaxPayloadBytes = 5 * 1000 * 1000
	// MinMemoryMiB and MaxMemoryMiB bound an action's memory limit.
	MinMemoryMiB = 128
	MaxMemoryMiB = 2048
	// MaxTimeout is the longest an action may be allowed to run.
	MaxTimeout = 600 * time.Second
	// PricePerGBSecond is IBM Cloud Functions' list price.
	PricePerGBSecond = 0.000017
	// PricePerRequest is IBM Cloud Functions' per-invocation price (none).
	PricePerRequest = 0
)

// Config configures a Backend. Zero fields take DefaultConfig's values.
type Config struct {
	// APIHost is the OpenWhisk API host: a URL ("https://us-south.
	// functions.cloud.ibm.com") or a host name, taken as https://host.
	// Required.
	APIHost string
	// Namespace is the action's namespace; "_" (the default) is the
	// namespace of the credentials.
	Namespace string
	// Action is the action's name, optionally "package/name". Default
	// "gale".
	Action string
	// Auth is the namespace's API key, "user:key" (the AUTH of
	// ~/.wskprops, `ibmcloud fn property get --auth`), sent as HTTP basic
	// authentication. Required.
	Auth string
	// Blocking invokes with ?blocking=true&result=true and gets the result
	// in the response, falling back to polling the activation if the
	// platform's blocking wait (60 s) ends first. False invokes without
	// blocking and polls the activation record for every task. Default
	// true.
	Blocking bool
	// Concurrency is the most invocations Gale keeps in flight, reported
	// as Traits.MaxConcurrency. Default 100; at most the namespace's
	// limit (1000 unless raised).
	Concurrency int
	// MemoryMiB is the action's memory limit (for Traits and cost; gale
	// deploy sets it on the action). Default 256.
	MemoryMiB int
	// Timeout is the action's time limit (for Traits and deploy, and to
	// bound polling). Default 60 s.
	Timeout time.Duration
	// PollInterval is the first wait between activation polls; it doubles
	// up to 1 s. Default 50 ms.
	PollInterval time.Duration
	// MaxThrottleRetries is how many times a throttled (HTTP 429)
	// invocation is retried, with exponential backoff from ThrottleBackoff,
	// before it fails with ErrThrottled (which wraps ErrNotStarted).
	// Default 5; negative means never retry.
	MaxThrottleRetries int
	// ThrottleBackoff is the first backoff after a 429; each further
	// retry doubles it up to 10 seconds, with jitter, and a longer
	// Retry-After is honoured up to that cap (backends.Backoff).
	// Default 200 ms.
	ThrottleBackoff time.Duration
	// Insecure skips TLS certificate verification (a local OpenWhisk with
	// a self-signed certificate, as `wsk -i`).
	Insecure bool
}

// DefaultConfig returns the defaults (APIHost and Auth stay empty).
func DefaultConfig() Config {
	return Config{
		Namespace:          "_",
		Action:             "gale",
		Blocking:           true,
		Concurrency:        100,
		MemoryMiB:          256,
		Timeout:            60 * time.Second,
		PollInterval:       50 * time.Millisecond,
		MaxThrottleRetries: 5,
		ThrottleBackoff:    200 * time.Millisecond,
	}
}

// withDefaults fills zero fields from DefaultConfig; Blocking has no zero
// "unset", so callers start from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Namespace == "" {
		c.Namespace = d.Namespace
	}
	if c.Action == "" {
		c.Action = d.Action
	}
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = d.MemoryMiB
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.MaxThrottleRetries == 0 {
		c.MaxThrottleRetries = d.MaxThrottleRetries
	}
	if c.ThrottleBackoff == 0 {
		c.ThrottleBackoff = d.ThrottleBackoff
	}
	return c
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.APIHost == "" {
		errs = append(errs, errors.New("ibm.api_host is required: the OpenWhisk API host, e.g. https://us-south.functions.cloud.ibm.com (the APIHOST of ~/.wskprops)"))
	} else if _, err := apiBase(c.APIHost); err != nil {
		errs = append(errs, err)
	}
	if c.Auth == "" {
		errs = append(errs, errors.New("ibm.auth is required: the namespace's API key as user:key (the AUTH of ~/.wskprops, or `ibmcloud fn property get --auth`)"))
	} else if u, k, ok := strings.Cut(c.Auth, ":"); !ok || u == "" || k == "" {
		errs = append(errs, errors.New("ibm.auth is not of the form user:key (the AUTH of ~/.wskprops)"))
	}
	if strings.ContainsAny(c.Namespace, "/ ?#") {
		errs = append(errs, fmt.Errorf("ibm.namespace %q must be a bare namespace name (or \"_\" for the credentials' own)", c.Namespace))
	}
	if c.Action != "" {
		parts := strings.Split(c.Action, "/")
		if len(parts) > 2 || strings.ContainsAny(c.Action, " ?#") || parts[0] == "" || parts[len(parts)-1] == "" {
			errs = append(errs, fmt.Errorf("ibm.action %q must be name or package/name", c.Action))
		}
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("ibm.concurrency %d is negative", c.Concurrency))
	}
	if c.MemoryMiB != 0 && (c.MemoryMiB < MinMemoryMiB || c.MemoryMiB > MaxMemoryMiB) {
		errs = append(errs, fmt.Errorf("ibm.memory_mib %d is outside OpenWhisk's %d–%d MiB", c.MemoryMiB, MinMemoryMiB, MaxMemoryMiB))
	}
	if c.Timeout < 0 || c.Timeout > MaxTimeout {
		errs = append(errs, fmt.Errorf("ibm.timeout %v is outside 0–%v", c.Timeout, MaxTimeout))
	}
	if c.PollInterval < 0 || c.ThrottleBackoff < 0 {
		errs = append(errs, errors.New("ibm: poll interval and throttle backoff must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ibm: invalid config: %w", err)
	}
	return nil
}

// apiBase returns the API's base URL for an API host.
func apiBase(host string) (*url.URL, error) {
	h := host
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	u, err := url.Parse(h)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ibm.api_host %q is not a host name or an http(s) URL", host)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}
