package galerunner_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/azure"
	"github.com/galeproject/gale/backends/azure/azuritetest"
	"github.com/galeproject/gale/backends/ibm/controller"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/beam/examples/wordcount"
	"github.com/galeproject/gale/beam/galerunner"
	"github.com/galeproject/gale/internal/awsstandin"
)

// cloudCase is one pipeline of the cloud conformance runs, with Prism's
// output for it.
type cloudCase struct {
	name  string
	build func(out string) func(s beam.Scope)
	want  []string
}

// TestCloudBackends runs Beam's wordcount and a CoGroupByKey join on each
// cloud backend and on a simulated platform, opened by OpenBackend from a Gale config file as
// --gale_backend does, against the backend's stand-in: the workers are
// this test binary, started by the stand-in as the platform starts a
// deployed function (Lambda Runtime Interface Emulators, the Functions
// Framework stand-in, a local Azure Functions host, the loopback OpenWhisk
// controller), and the temporary store between stages is on the object
// store the platform's workers would reach (versitygw for s3://,
// fake-gcs-server for gs://, Azurite for azblob://, an S3 protocol server
// for cos://). Each output must equal Prism's.
func TestCloudBackends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cloud stand-ins")
	}
	in := writeCorpus(t, t.TempDir(), 1500)
	cases := []*cloudCase{
		{name: "WordCount", build: func(out string) func(s beam.Scope) {
			return func(s beam.Scope) { wordcount.Build(s, in, out) }
		}},
		{name: "CoGroupByKeyJoin", build: join},
	}
	for _, c := range cases {
		out := filepath.Join(t.TempDir(), "prism.txt")
		runPrism(t, c.build(out))
		c.want = sortedLines(t, out)
	}
	t.Run("aws", func(t *testing.T) {
		rie := awsstandin.RequireTool(t, awsstandin.EmulatorTool)
		vgw := awsstandin.RequireTool(t, awsstandin.VersityGWTool)
		dir := t.TempDir()
		gw, err := awsstandin.StartVersityGW(vgw, filepath.Join(dir, "s3"), []string{"temp"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { gw.Close() })
		// The SDK's chain, here and in the workers, sees the gateway's
		// root user only.
		for _, kv := range gw.Env(t.TempDir()) {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		pool, err := awsstandin.StartPool(awsstandin.PoolConfig{Emulator: rie, Bootstrap: testBinary(t), Size: 2, Output: testOutput(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		conf := fmt.Sprintf("backends:\n  aws:\n    endpoint: %s\n    function: %s\n    concurrency: 2\n    memory_mib: 512\n"+
			"storage:\n  s3.endpoint: %s\n  s3.path_style: \"true\"\n  s3.region: us-east-1\n", pool.URL(), awsstandin.FunctionName, gw.URL())
		runCloud(t, "aws", conf, "s3://temp/beam", cases)
		if st := pool.Stats(); st.Invocations == 0 {
			t.Errorf("no invocation reached the emulators: %+v", st)
		}
	})
	t.Run("sim", func(t *testing.T) {
		// A simulated platform runs the tasks here, through the Beam
		// worker, under its model of AWS Lambda.
		runCloud(t, "sim:aws", "backends:\n  sim:aws:\n    seed: 7\n", filepath.Join(t.TempDir(), "temp"), cases)
	})
	t.Run("gcp", func(t *testing.T) {
		srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Writer: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "temp"})
		conf := "backends:\n  gcp:\n    memory_mib: 512\n    local:\n      instances: 2\n" +
			"storage:\n  gs.endpoint: " + srv.URL() + "/storage/v1/\n"
		runCloud(t, "gcp", conf, "gs://temp/beam", cases)
	})
	t.Run("azure", func(t *testing.T) {
		t.Chdir(repoRoot(t)) // azuritetest finds Azurite under the core module's .tools
		endpoint := azuritetest.Start(t)
		st, err := azure.NewBlob(azure.BlobConfig{Endpoint: endpoint, Key: azuritetest.Key}, "temp", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Container().Create(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		conf := "backends:\n  azure:\n    local_host:\n      instances: 2\n" +
			"storage:\n  azblob.endpoint: " + endpoint + "\n  azblob.key: " + azuritetest.Key + "\n"
		runCloud(t, "azure", conf, "azblob://temp/beam", cases)
	})
	t.Run("ibm", func(t *testing.T) {
		backend := s3mem.New()
		cos := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
		t.Cleanup(cos.Close)
		if err := backend.CreateBucket("temp"); err != nil {
			t.Fatal(err)
		}
		const auth = "gale-test:0123456789abcdef"
		cfg := controller.DefaultConfig()
		cfg.Auth, cfg.Command, cfg.Actions, cfg.MaxContainers, cfg.Output = auth, testBinary(t), []string{"gale"}, 2, testOutput(t)
		c, err := controller.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Serve(context.Background(), ln)
		}()
		t.Cleanup(func() {
			c.Close()
			<-done
		})
		wsk := filepath.Join(t.TempDir(), "wskprops") // empty: not the machine's ~/.wskprops
		if err := os.WriteFile(wsk, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("WSK_CONFIG_FILE", wsk)
		conf := fmt.Sprintf("backends:\n  ibm:\n    api_host: http://%s\n    auth: %s\n    concurrency: 2\n    memory_mib: 512\n"+
			"storage:\n  cos.endpoint: %s\n  cos.access_key_id: hmac-id\n  cos.secret_access_key: hmac-secret\n  cos.path_style: \"true\"\n",
			ln.Addr(), auth, cos.URL)
		runCloud(t, "ibm", conf, "cos://temp/beam", cases)
	})
}

// runCloud opens the backend from a config file and runs every case on
// it, with the temporary store at temp, comparing with Prism.
func runCloud(t *testing.T, name, config, temp string, cases []*cloudCase) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ob, err := galerunner.OpenBackend(ctx, galerunner.BackendConfig{Name: name, ConfigFile: path, Workers: 2, Output: testOutput(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if ob.Backend == nil || ob.Name != name {
		t.Fatalf("OpenBackend gave %+v", ob)
	}
	for _, c := range cases {
		start := time.Now()
		out := filepath.Join(t.TempDir(), "gale.txt")
		res := runGale(t, c.build(out), galerunner.Config{Backend: ob.Backend, BackendName: name, Workers: 2, Partitions: 2,
			Temp: temp, StoreOptions: ob.StoreOptions})
		if got := sortedLines(t, out); !slices.Equal(got, c.want) {
			t.Errorf("%s on %s differs from prism: %d vs %d lines\ngale:  %.10q\nprism: %.10q", c.name, name, len(got), len(c.want), got, c.want)
		}
		var shuffled int64
		for _, st := range res.Report.Stages {
			shuffled += st.Metrics.ShuffleBytesWritten
		}
		if res.Report.Invocations == 0 || shuffled == 0 {
			t.Errorf("%s on %s: %d invocations, %d bytes through the temporary store", c.name, name, res.Report.Invocations, shuffled)
		}
		t.Logf("%s on %s: %d lines agree with prism, %d invocations, %s", c.name, name, len(c.want), res.Report.Invocations, time.Since(start).Round(time.Millisecond))
	}
	// The job's temporary objects are gone.
	st, err := gale.OpenStore(ctx, temp, ob.StoreOptions)
	if err != nil {
		t.Fatal(err)
	}
	if left, err := objstore.ListAll(ctx, st, ""); err != nil || len(left) != 0 {
		t.Errorf("the temporary store %s keeps %d objects (%v)", temp, len(left), err)
	}
}

// testBinary is this test binary: the workers the stand-ins start run it,
// and TestMain's beam.Init serves their tasks.
func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// testOutput sends worker output to the test log when -v is given.
func testOutput(t *testing.T) io.Writer {
	if testing.Verbose() {
		return testWriter{t}
	}
	return io.Discard
}

// repoRoot is the directory of go.work above the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test's directory")
		}
		dir = parent
	}
}
