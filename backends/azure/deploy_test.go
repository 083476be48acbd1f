package azure

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/galeproject/gale/backends/azure/azuritetest"
)

const wantHostJSON = `{
  "version": "2.0",
  "customHandler": {
    "description": {
      "defaultExecutablePath": "handler",
      "arguments": [
        "worker"
      ]
    }
  },
  "extensions": {
    "http": {
      "maxConcurrentRequests": 1
    }
  }
}
`

const wantFunctionJSON = `{
  "bindings": [
    {
      "type": "httpTrigger",
      "direction": "in",
      "name": "req",
      "authLevel": "function",
      "methods": [
        "post"
      ]
    },
    {
      "type": "http",
      "direction": "out",
      "name": "res"
    }
  ]
}
`

func testPackage(t *testing.T) ([]byte, []byte) {
	t.Helper()
	binary := bytes.Repeat([]byte("\x7fELF gale worker binary "), 1000)
	var buf bytes.Buffer
	if err := Package(&buf, AppConfig{Arguments: []string{"worker"}, MaxConcurrentRequests: 1}, bytes.NewReader(binary)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), binary
}

func TestPackageLayoutByteForByte(t *testing.T) {
	pkg, binary := testPackage(t)
	again, _ := testPackage(t)
	if !bytes.Equal(pkg, again) {
		t.Fatal("two packages of the same inputs differ: the zip is not deterministic")
	}
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		mode string
		data []byte
	}{
		{"gale/function.json", "-rw-r--r--", []byte(wantFunctionJSON)},
		{"handler", "-rwxr-xr-x", binary},
		{"host.json", "-rw-r--r--", []byte(wantHostJSON)},
	}
	if len(zr.File) != len(want) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(want))
	}
	for i, f := range zr.File {
		w := want[i]
		if f.Name != w.name || f.Mode().String() != w.mode || !f.Modified.Equal(packageTime) || f.Method != zip.Deflate {
			t.Errorf("entry %d: %s %s %s method %d, want %s %s %s deflate", i, f.Name, f.Mode(), f.Modified, f.Method, w.name, w.mode, packageTime)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, w.data) {
			t.Errorf("%s:\n%s\nwant:\n%s", f.Name, got, w.data)
		}
	}
	// The package unpacks into an app the local host reads.
	dir := t.TempDir()
	if err := Unpack(pkg, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := (AppConfig{Executable: "gale"}).Files(); err == nil {
		t.Error("an executable named like the function was accepted")
	}
}

type fakeCredential struct{}

func (fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "test-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type recorded struct {
	Method, Path, APIVersion, Auth string
	Body                           []byte
}

// fakeARM records Resource Manager and Kudu requests and answers them as
// Azure documents.
func fakeARM(t *testing.T) (*httptest.Server, func() []recorded) {
	var mu sync.Mutex
	var reqs []recorded
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, recorded{r.Method, r.URL.Path, r.URL.Query().Get("api-version"), r.Header.Get("Authorization"), body})
		mu.Unlock()
		site := "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Web/sites/my-app"
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "POST" && r.URL.Path == site+"/config/appsettings/list":
			io.WriteString(w, `{"id": "x", "name": "appsettings", "properties": {"AzureWebJobsStorage": "conn", "FUNCTIONS_EXTENSION_VERSION": "~4"}}`)
		case r.Method == "PUT" && r.URL.Path == site+"/config/appsettings":
			w.Write(body)
		case r.Method == "POST" && r.URL.Path == site+"/syncfunctiontriggers":
			w.WriteHeader(http.StatusNoContent)
		case r.Method == "POST" && r.URL.Path == "/api/zipdeploy":
			w.WriteHeader(http.StatusOK)
		case strings.Contains(r.URL.Path, "/sites/missing-app"):
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error": {"code": "ResourceNotFound", "message": "The Resource 'Microsoft.Web/sites/missing-app' was not found."}}`)
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), reqs...)
	}
}

func armOptions(srv *httptest.Server) *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: srv.URL, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Audience: "https://management.azure.com", Endpoint: srv.URL}}},
		Transport: srv.Client(),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
}

func TestDeployRunFromPackageURL(t *testing.T) {
	endpoint := azuritetest.Start(t)
	srv, requests := fakeARM(t)
	pkg, _ := testPackage(t)
	cfg := DeployConfig{SubscriptionID: "sub-1", ResourceGroup: "rg-1", App: "my-app",
		Storage: BlobConfig{Endpoint: endpoint, Key: azuritetest.Key}, Credential: fakeCredential{}, ARM: armOptions(srv)}
	res, err := Deploy(t.Context(), cfg, pkg)
	if err != nil {
		t.Fatal(err)
	}
	reqs := requests()
	site := "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Web/sites/my-app"
	wantSeq := []string{"POST " + site + "/config/appsettings/list", "PUT " + site + "/config/appsettings", "POST " + site + "/syncfunctiontriggers"}
	if len(reqs) != len(wantSeq) {
		t.Fatalf("%d requests, want %d: %+v", len(reqs), len(wantSeq), reqs)
	}
	for i, r := range reqs {
		if r.Method+" "+r.Path != wantSeq[i] || r.Auth != "Bearer test-token" || r.APIVersion == "" {
			t.Errorf("request %d: %s %s api-version %q auth %q, want %s with the token", i, r.Method, r.Path, r.APIVersion, r.Auth, wantSeq[i])
		}
	}
	var put struct{ Properties map[string]string }
	if err := json.Unmarshal(reqs[1].Body, &put); err != nil {
		t.Fatal(err)
	}
	pkgURL := put.Properties["WEBSITE_RUN_FROM_PACKAGE"]
	if put.Properties["AzureWebJobsStorage"] != "conn" || put.Properties["FUNCTIONS_WORKER_RUNTIME"] != "custom" ||
		!strings.HasPrefix(pkgURL, res.PackageURL+"?") || !strings.Contains(pkgURL, "sig=") || !strings.Contains(pkgURL, "sp=r") {
		t.Errorf("app settings sent: %v (package %s)", put.Properties, res.PackageURL)
	}
	// The app can read its package through the signed URL, byte for byte.
	resp, err := http.Get(pkgURL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, pkg) {
		t.Errorf("package through its URL: HTTP %d, %d bytes, want the %d bytes deployed", resp.StatusCode, len(got), len(pkg))
	}

	cfg.App = "missing-app"
	if _, err := Deploy(t.Context(), cfg, pkg); err == nil || !strings.Contains(err.Error(), "create the Function App first") {
		t.Errorf("missing app: %v", err)
	}
}

func TestDeployZip(t *testing.T) {
	srv, requests := fakeARM(t)
	pkg, _ := testPackage(t)
	cfg := DeployConfig{SubscriptionID: "sub-1", ResourceGroup: "rg-1", App: "my-app", Method: MethodZipDeploy,
		Credential: fakeCredential{}, ARM: armOptions(srv), SCMURL: srv.URL, HTTPClient: srv.Client()}
	if _, err := Deploy(t.Context(), cfg, pkg); err != nil {
		t.Fatal(err)
	}
	reqs := requests()
	if len(reqs) != 2 || reqs[0].Path != "/api/zipdeploy" || !bytes.Equal(reqs[0].Body, pkg) || reqs[0].Auth != "Bearer test-token" ||
		!strings.HasSuffix(reqs[1].Path, "/syncfunctiontriggers") {
		t.Errorf("requests %+v", reqs)
	}
	err := DeployConfig{App: "x", Method: "ftp"}.Validate()
	for _, want := range []string{"subscription_id", "resource_group", `app "x"`, `method "ftp"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %s", err, want)
		}
	}
}
