//go:build !gale_slim || gale_aws

package gale_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/galeproject/gale"
	"github.com/galeproject/gale/backends/faulty"
	"github.com/galeproject/gale/backends/objstore"
	"github.com/galeproject/gale/examples/wordcount"
	"github.com/galeproject/gale/internal/awsstandin"
	"github.com/galeproject/gale/internal/wordref"
)

// startS3 serves an in-memory S3 with one bucket on loopback and returns
// the store options that reach it. Credentials come from the environment,
// isolated from the machine's.
func startS3(t *testing.T, bucket string) map[string]string {
	t.Helper()
	awsstandin.IsolateTest(t)
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // gofakes3 writes some error headers twice
	srv.Start()
	t.Cleanup(srv.Close)
	return map[string]string{"s3.endpoint": srv.URL, "s3.path_style": "true", "s3.region": "us-east-1"}
}

func TestWordCountOnS3(t *testing.T) {
	opts := startS3(t, "data")
	ctx := context.Background()
	bucket, err := gale.OpenStore(ctx, "s3://data", opts)
	if err != nil {
		t.Fatal(err)
	}
	// A corpus of several objects under a prefix, plus an object that the
	// prefix must not match.
	dir := t.TempDir()
	var files []string
	for i := range 3 {
		f := corpus(t, dir, fmt.Sprintf("book-%d.txt", i), int64(30<<10+i*7919), uint64(40+i), nil)
		files = append(files, f)
		put(t, bucket, "corpus/"+filepath.Base(f), f)
	}
	stray := corpus(t, dir, "stray.txt", 5000, 99, nil)
	put(t, bucket, "corpus-old/stray.txt", stray)
	want := refCount(t, files...)

	for _, tc := range []struct {
		name   string
		faults faulty.Config
		temp   string
	}{
		{"local temp", faulty.Config{}, ""},
		{"s3 temp with faults", faulty.Config{Rule: onFirstAttempt(faulty.Fail)}, "s3://data/tmp"},
		{"random faults", faulty.Config{Seed: 5, RejectRate: 0.15, LoseRate: 0.15, DuplicateRate: 0.15, FailRate: 0.1}, "s3://data/tmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := "s3://data/out-" + strings.ReplaceAll(tc.name, " ", "-")
			fb := newFaulty(t, tc.faults)
			p := gale.NewPipeline()
			wordcount.Build(p, []string{"s3://data/corpus"}, out)
			runOpts := []gale.RunOption{gale.WithBackend("faulty", fb), gale.StoreOptions(opts), gale.Workers(3),
				gale.ChunkSize(8 << 10), gale.Partitions(2), gale.MaxAttempts(10), gale.JobID("s3-" + fmt.Sprint(len(tc.name)))}
			if tc.temp != "" {
				runOpts = append(runOpts, gale.TempStore(tc.temp))
			}
			_, err := gale.Run(ctx, p, runOpts...)
			_ = fb.Close()
			if err != nil {
				t.Fatalf("run failed (faults %+v): %v", fb.Stats(), err)
			}
			prefix := strings.TrimPrefix(out, "s3://data/") + "/"
			objs, err := objstore.ListAll(ctx, bucket, prefix)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			var text bytes.Buffer
			for _, o := range objs {
				name := strings.TrimPrefix(o.Key, prefix)
				keys = append(keys, name)
				if !strings.HasPrefix(name, "part-") && name != "_SUCCESS" {
					t.Errorf("output holds %s, which is neither a part object nor _SUCCESS", o.Key)
					continue
				}
				if name != "_SUCCESS" {
					text.Write(get(t, bucket, o.Key))
				}
			}
			sort.Strings(keys)
			if !slices.Contains(keys, "_SUCCESS") {
				t.Errorf("no _SUCCESS among %v", keys)
			}
			got, err := wordref.ParseCounts(&text)
			if err != nil {
				t.Fatal(err)
			}
			sameCounts(t, got, want)
			if tc.temp != "" {
				if left, _ := objstore.ListAll(ctx, bucket, "tmp/"); len(left) > 0 {
					t.Errorf("the job left %d objects in its temporary store, e.g. %s", len(left), left[0].Key)
				}
			}
		})
	}
}
