package galerunner

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/galeproject/gale/backends"
	"github.com/galeproject/gale/backends/aws"
	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/azure/host"
	"github.com/galeproject/gale/backends/gcp"
	"github.com/galeproject/gale/backends/ibm"
	"github.com/galeproject/gale/backends/process"
)

// BackendNames lists the backends OpenBackend builds: the same names as
// `gale run --backend`.
var BackendNames = []string{"local", "process", "aws", "gcp", "azure", "ibm"}

// ErrUnknownBackend is wrapped by OpenBackend's error for a name not in
// BackendNames.
var ErrUnknownBackend = errors.New("galerunner: unknown backend")

// ErrNotConfigured is wrapped by OpenBackend's error when a cloud backend's
// configuration lacks what it needs to reach its platform; the message
// names the config file and key.
var ErrNotConfigured = errors.New("galerunner: backend not configured")

// BackendConfig says which backend OpenBackend builds and where its
// settings come from.
type BackendConfig struct {
	// Name is one of BackendNames. Default "local".
	Name string
	// ConfigFile is Gale's configuration file, the one `gale run` reads:
	// a backends.<name> section per backend and a storage section of
	// object-store options (docs/backends.md). Default: GALE_CONFIG, else
	// ~/.gale/config.yaml; a missing default file is an empty
	// configuration.
	ConfigFile string
	// Workers bounds the tasks in flight (a cloud backend's concurrency,
	// the process backend's worker count, a local stand-in's instances);
	// 0 takes the configuration's or the backend's default.
	Workers int
	// Output receives the output of worker processes this machine starts
	// (the process backend, the gcp and azure local stand-ins). Default
	// os.Stderr.
	Output io.Writer
}

// OpenedBackend is a backend OpenBackend built.
type OpenedBackend struct {
	// Backend runs the tasks; nil for the local backend (Run's default).
	Backend backends.Backend
	// Name is the backend's name.
	Name string
	// StoreOptions are the config file's storage options (s3.endpoint,
	// gs.endpoint, azblob.key, ...), for Config.StoreOptions: the driver
	// and every worker open the temporary store with them.
	StoreOptions map[string]string
	// WorkersHere reports whether the workers run on this machine (local,
	// process, and the gcp and azure local stand-ins), so that a local
	// directory can hold the temporary store. Otherwise the temporary
	// store must be one the platform's workers reach (--gale_temp).
	WorkersHere bool
}

// Close stops the backend (and any local stand-in it started).
func (b *OpenedBackend) Close() error {
	if b == nil || b.Backend == nil {
		return nil
	}
	return b.Backend.Close()
}

// galeConfigFile is Gale's configuration file, as cmd/gale reads it.
type galeConfigFile struct {
	Backends map[string]yaml.Node `yaml:"backends"`
	Storage  map[string]string    `yaml:"storage"`
}

// configFilePath returns the config file to read and whether it must
// exist (it was named explicitly).
func configFilePath(explicit string) (string, bool) {
	if explicit != "" {
		return explicit, true
	}
	if p := os.Getenv("GALE_CONFIG"); p != "" {
		return p, true
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", false
	}
	return filepath.Join(home, ".gale", "config.yaml"), false
}

func loadConfigFile(explicit string) (*galeConfigFile, string, error) {
	path, must := configFilePath(explicit)
	cfg := &galeConfigFile{}
	if path == "" {
		return cfg, "", nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !must {
		return cfg, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("galerunner: reading Gale's config file: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, path, fmt.Errorf("galerunner: config %s: %w", path, err)
	}
	for name := range cfg.Backends {
		if !knownBackend(name) {
			return nil, path, fmt.Errorf("galerunner: config %s: unknown backend section %q (known: %s)", path, name, strings.Join(BackendNames, ", "))
		}
	}
	return cfg, path, nil
}

func knownBackend(name string) bool {
	for _, n := range BackendNames {
		if n == name {
			return true
		}
	}
	return false
}

// decodeSection decodes backends.<name> strictly into v; a missing
// section leaves v as it is.
func (c *galeConfigFile) decodeSection(path, name string, v any) error {
	n, ok := c.Backends[name]
	if !ok {
		return nil
	}
	b, err := yaml.Marshal(&n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("galerunner: config %s, section backends.%s: %w", path, name, err)
	}
	return nil
}

// OpenBackend builds the backend cfg names from Gale's config file, with
// the same sections and keys as `gale run --backend NAME` (the
// constructors of backends/aws, gcp, azure and ibm; the gcp `local` and
// azure `local_host` stand-ins start this program as their workers). The
// workers of every backend are this program's binary: it must reach
// beam.Init (or Execute) when a platform starts it. A cloud backend whose
// configuration lacks what reaching its platform needs fails with an
// error wrapping ErrNotConfigured that names the key.
func OpenBackend(ctx context.Context, cfg BackendConfig) (*OpenedBackend, error) {
	if cfg.Name == "" {
		cfg.Name = "local"
	}
	if !knownBackend(cfg.Name) {
		return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknownBackend, cfg.Name, strings.Join(BackendNames, ", "))
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("galerunner: BackendConfig.Workers must not be negative, got %d", cfg.Workers)
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	file, path, err := loadConfigFile(cfg.ConfigFile)
	if err != nil {
		return nil, err
	}
	if path == "" {
		path = "(no config file)"
	}
	ob := &OpenedBackend{Name: cfg.Name, StoreOptions: file.Storage}
	var b backends.Backend
	switch cfg.Name {
	case "local":
		ob.WorkersHere = true
		return ob, nil
	case "process":
		var s struct {
			Concurrency int `yaml:"concurrency"`
		}
		if err := file.decodeSection(path, "process", &s); err != nil {
			return nil, err
		}
		pc := process.DefaultConfig()
		if err := checkWorkerBinary(pc.Path); err != nil {
			return nil, err
		}
		pc.Concurrency = first(cfg.Workers, s.Concurrency, pc.Concurrency)
		pc.Output = cfg.Output
		b, err = process.New(pc)
		ob.WorkersHere = true
	case "aws":
		b, err = openAWS(ctx, file, path, cfg)
	case "gcp":
		b, ob.WorkersHere, err = openGCP(ctx, file, path, cfg)
	case "azure":
		b, ob.WorkersHere, err = openAzure(ctx, file, path, cfg)
	case "ibm":
		b, err = openIBM(ctx, file, path, cfg)
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "galerunner:") { // not already naming the section
			err = fmt.Errorf("galerunner: backend %s: %w", cfg.Name, err)
		}
		return nil, err
	}
	ob.Backend = b
	return ob, nil
}

// awsSection is backends.aws, as cmd/gale reads it.
type awsSection struct {
	Region       string        `yaml:"region"`
	Endpoint     string        `yaml:"endpoint"`
	Profile      string        `yaml:"profile"`
	Function     string        `yaml:"function"`
	Qualifier    string        `yaml:"qualifier"`
	MemoryMiB    int           `yaml:"memory_mib"`
	Timeout      time.Duration `yaml:"timeout"`
	Concurrency  int           `yaml:"concurrency"`
	Role         string        `yaml:"role"`
	Architecture string        `yaml:"architecture"`
	Staging      string        `yaml:"staging"`
	StagingS3    struct {
		Endpoint  string `yaml:"endpoint"`
		Region    string `yaml:"region"`
		PathStyle bool   `yaml:"path_style"`
		Profile   string `yaml:"profile"`
	} `yaml:"staging_s3"`
	MaxThrottleRetries int           `yaml:"max_throttle_retries"`
	ThrottleBackoff    time.Duration `yaml:"throttle_backoff"`
}

func openAWS(ctx context.Context, file *galeConfigFile, path string, cfg BackendConfig) (backends.Backend, error) {
	var s awsSection
	if err := file.decodeSection(path, "aws", &s); err != nil {
		return nil, err
	}
	lc := aws.LambdaConfig{
		Region: s.Region, Endpoint: s.Endpoint, Profile: s.Profile, Function: s.Function, Qualifier: s.Qualifier,
		MemoryMiB: s.MemoryMiB, Timeout: s.Timeout, Concurrency: first(cfg.Workers, s.Concurrency), Role: s.Role,
		Architecture: s.Architecture, Staging: s.Staging, MaxThrottleRetries: s.MaxThrottleRetries, ThrottleBackoff: s.ThrottleBackoff,
		StagingS3: aws.S3Config{Endpoint: s.StagingS3.Endpoint, Region: s.StagingS3.Region, PathStyle: s.StagingS3.PathStyle,
			Profile: s.StagingS3.Profile},
	}
	if err := lc.Validate(); err != nil {
		return nil, fmt.Errorf("config %s, section backends.aws: %w", path, err)
	}
	return aws.NewLambda(ctx, lc)
}

// gcpSection is backends.gcp, as cmd/gale reads it.
type gcpSection struct {
	Project         string        `yaml:"project"`
	Region          string        `yaml:"region"`
	Function        string        `yaml:"function"`
	URL             string        `yaml:"url"`
	Endpoints       []string      `yaml:"endpoints"`
	MemoryMiB       int           `yaml:"memory_mib"`
	Timeout         time.Duration `yaml:"timeout"`
	Concurrency     int           `yaml:"concurrency"`
	Auth            string        `yaml:"auth"`
	CredentialsFile string        `yaml:"credentials_file"`
	MaxAttempts     int           `yaml:"max_attempts"`
	Runtime         string        `yaml:"runtime"`
	ServiceAccount  string        `yaml:"service_account"`
	Local           *struct {
		Instances int `yaml:"instances"`
	} `yaml:"local"`
}

func openGCP(ctx context.Context, file *galeConfigFile, path string, cfg BackendConfig) (backends.Backend, bool, error) {
	var s gcpSection
	if err := file.decodeSection(path, "gcp", &s); err != nil {
		return nil, false, err
	}
	gc := gcp.DefaultConfig()
	gc.Project, gc.Region, gc.Function, gc.URL, gc.Endpoints = s.Project, s.Region, s.Function, s.URL, s.Endpoints
	gc.MemoryMiB = first(s.MemoryMiB, gc.MemoryMiB)
	gc.Timeout = first(s.Timeout, gc.Timeout)
	gc.Concurrency = first(cfg.Workers, s.Concurrency, gc.Concurrency)
	gc.Auth = first(s.Auth, gc.Auth)
	gc.CredentialsFile = s.CredentialsFile
	gc.MaxAttempts = first(s.MaxAttempts, gc.MaxAttempts)
	if s.Local == nil {
		if gc.URL == "" && len(gc.Endpoints) == 0 && (gc.Project == "" || gc.Region == "" || gc.Function == "") {
			return nil, false, fmt.Errorf("%w: no function configured: set project, region and function (or url) in the backends.gcp section of %s, "+
				"or local: {} to run the function locally", ErrNotConfigured, path)
		}
		b, err := gcp.New(ctx, gc)
		return b, false, err
	}
	if gc.URL != "" || len(gc.Endpoints) > 0 {
		return nil, false, fmt.Errorf("backends.gcp in %s sets local and also url or endpoints; keep one", path)
	}
	exe, err := workerBinary()
	if err != nil {
		return nil, false, err
	}
	instances := first(s.Local.Instances, cfg.Workers, 2)
	si, err := gcp.StartStandIn(ctx, gcp.StandInConfig{Path: exe, Instances: instances, Output: cfg.Output})
	if err != nil {
		return nil, false, err
	}
	gc.Endpoints = si.URLs()
	gc.Project, gc.Region, gc.Function = "", "", ""
	gc.Concurrency = instances // one request per instance, as deployed
	b, err := gcp.New(ctx, gc)
	if err != nil {
		si.Close()
		return nil, false, err
	}
	return &withCleanup{Backend: b, cleanup: func() { si.Close() }}, true, nil
}

// withCleanup is a backend on a local stand-in, which Close stops.
type withCleanup struct {
	backends.Backend
	cleanup func()
}

func (w *withCleanup) Close() error {
	err := w.Backend.Close()
	w.cleanup()
	return err
}

// Traits reports the wrapped backend's traits.
func (w *withCleanup) Traits() backends.Traits { return backends.TraitsOf(w.Backend) }

// azureSection is backends.azure, as cmd/gale reads it.
type azureSection struct {
	App         string        `yaml:"app"`
	Function    string        `yaml:"function"`
	URL         string        `yaml:"url"`
	RoutePrefix string        `yaml:"route_prefix"`
	Key         string        `yaml:"key"`
	KeyEnv      string        `yaml:"key_env"`
	KeyInQuery  bool          `yaml:"key_in_query"`
	Concurrency int           `yaml:"concurrency"`
	MaxAttempts int           `yaml:"max_attempts"`
	Timeout     time.Duration `yaml:"timeout"`
	LocalHost   *struct {
		Instances             int  `yaml:"instances"`
		Forwarding            bool `yaml:"forwarding"`
		MaxConcurrentRequests int  `yaml:"max_concurrent_requests"`
	} `yaml:"local_host"`
	Deploy struct {
		SubscriptionID        string `yaml:"subscription_id"`
		ResourceGroup         string `yaml:"resource_group"`
		Method                string `yaml:"method"`
		StorageAccount        string `yaml:"storage_account"`
		StorageEndpoint       string `yaml:"storage_endpoint"`
		StorageKeyEnv         string `yaml:"storage_key_env"`
		Container             string `yaml:"container"`
		MaxConcurrentRequests int    `yaml:"max_concurrent_requests"`
	} `yaml:"deploy"`
}

func openAzure(ctx context.Context, file *galeConfigFile, path string, cfg BackendConfig) (backends.Backend, bool, error) {
	var s azureSection
	if err := file.decodeSection(path, "azure", &s); err != nil {
		return nil, false, err
	}
	ac := azure.Config{App: s.App, Function: s.Function, URL: s.URL, RoutePrefix: s.RoutePrefix, Key: s.Key,
		KeyInQuery: s.KeyInQuery, Concurrency: first(cfg.Workers, s.Concurrency), MaxAttempts: s.MaxAttempts, Timeout: s.Timeout}
	if ac.Key == "" {
		ac.Key = os.Getenv(first(s.KeyEnv, "AZURE_FUNCTIONS_KEY"))
	}
	if s.LocalHost == nil {
		if ac.App == "" && ac.URL == "" {
			return nil, false, fmt.Errorf("%w: no app configured: set app (the Function App's name) in the backends.azure section of %s, "+
				"or local_host: {} to run a local Functions host", ErrNotConfigured, path)
		}
		b, err := azure.New(ctx, ac)
		return b, false, err
	}
	if ac.URL != "" || ac.App != "" {
		return nil, false, fmt.Errorf("backends.azure in %s sets local_host and also app or url; keep one", path)
	}
	exe, err := workerBinary()
	if err != nil {
		return nil, false, err
	}
	dir, err := os.MkdirTemp("", "gale-beam-azure-app-")
	if err != nil {
		return nil, false, err
	}
	fail := func(err error) (backends.Backend, bool, error) {
		os.RemoveAll(dir)
		return nil, false, fmt.Errorf("local host: %w", err)
	}
	ac.Function = first(ac.Function, "gale")
	app := azure.AppConfig{Executable: "handler", Functions: []string{ac.Function},
		Forwarding: s.LocalHost.Forwarding, MaxConcurrentRequests: s.LocalHost.MaxConcurrentRequests}
	files, err := app.Files()
	if err != nil {
		return fail(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fail(err)
		}
	}
	if err := os.Symlink(exe, filepath.Join(dir, "handler")); err != nil {
		return fail(err)
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := hex.EncodeToString(k[:])
	h, err := host.Start(ctx, host.Config{Dir: dir, Instances: first(s.LocalHost.Instances, 2), HostKeys: []string{key}, Output: cfg.Output}, "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	ac.URL, ac.Key, ac.KeyInQuery = h.URL(), key, false
	b, err := azure.New(ctx, ac)
	if err != nil {
		h.Close()
		return fail(err)
	}
	return &withCleanup{Backend: b, cleanup: func() { h.Close(); os.RemoveAll(dir) }}, true, nil
}

// ibmSection is backends.ibm, as cmd/gale reads it. Missing api_host,
// auth and namespace come from the OpenWhisk CLI's property file.
type ibmSection struct {
	APIHost     string        `yaml:"api_host"`
	Namespace   string        `yaml:"namespace"`
	Action      string        `yaml:"action"`
	Auth        string        `yaml:"auth"`
	Blocking    *bool         `yaml:"blocking"`
	Concurrency int           `yaml:"concurrency"`
	MemoryMiB   int           `yaml:"memory_mib"`
	Timeout     time.Duration `yaml:"timeout"`
	Insecure    bool          `yaml:"insecure"`
	Kind        string        `yaml:"kind"`
	Image       string        `yaml:"image"`
}

func openIBM(ctx context.Context, file *galeConfigFile, path string, cfg BackendConfig) (backends.Backend, error) {
	var s ibmSection
	if err := file.decodeSection(path, "ibm", &s); err != nil {
		return nil, err
	}
	props, err := wskProps()
	if err != nil {
		return nil, err
	}
	ic := ibm.DefaultConfig()
	ic.APIHost, ic.Auth, ic.Namespace = first(s.APIHost, props["APIHOST"]), first(s.Auth, props["AUTH"]), first(s.Namespace, props["NAMESPACE"], ic.Namespace)
	ic.Action = first(s.Action, ic.Action)
	if s.Blocking != nil {
		ic.Blocking = *s.Blocking
	}
	ic.Concurrency = first(cfg.Workers, s.Concurrency, ic.Concurrency)
	ic.MemoryMiB = first(s.MemoryMiB, ic.MemoryMiB)
	ic.Timeout = first(s.Timeout, ic.Timeout)
	ic.Insecure = s.Insecure
	if err := ic.Validate(); err != nil {
		return nil, fmt.Errorf("%w: section backends.ibm of %s (or the OpenWhisk property file, WSK_CONFIG_FILE or ~/.wskprops): %w",
			ErrNotConfigured, path, err)
	}
	return ibm.New(ctx, ic)
}

// wskProps reads the OpenWhisk CLI's property file, if there is one.
func wskProps() (map[string]string, error) {
	path := os.Getenv("WSK_CONFIG_FILE")
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		path = filepath.Join(home, ".wskprops")
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && os.Getenv("WSK_CONFIG_FILE") == "" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the OpenWhisk properties: %w", err)
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && !strings.HasPrefix(k, "#") {
			props[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return props, sc.Err()
}

// first returns the first non-zero value.
func first[T comparable](vs ...T) T {
	var zero T
	for _, v := range vs {
		if v != zero {
			return v
		}
	}
	return zero
}

// ErrWorkerBinary is wrapped by OpenBackend's error when the binary its
// workers would run is missing or unusable.
var ErrWorkerBinary = errors.New("galerunner: unusable worker binary")

// workerBinary returns this program's binary, which the backends that
// start workers on this machine run, after checkWorkerBinary.
func workerBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%w: cannot locate this program's binary: %w", ErrWorkerBinary, err)
	}
	return exe, checkWorkerBinary(exe)
}

// checkWorkerBinary reports a worker binary that is missing (removed
// since the program started) or not executable. It runs before any task
// starts. (A stripped binary is not rejected: the SDK needs the symbol
// table only for functions not registered with package register, and
// `go test` binaries are stripped.)
func checkWorkerBinary(path string) error {
	if path == "" {
		return fmt.Errorf("%w: cannot locate this program's binary", ErrWorkerBinary)
	}
	if strings.HasSuffix(path, " (deleted)") {
		return fmt.Errorf("%w: %s was removed after the program started; rebuild and run it again", ErrWorkerBinary, strings.TrimSuffix(path, " (deleted)"))
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: the worker binary (this program): %w", ErrWorkerBinary, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: %s is not an executable file", ErrWorkerBinary, path)
	}
	return nil
}
