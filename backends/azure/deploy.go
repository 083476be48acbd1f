package azure

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/appservice/armappservice/v4"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// Deploy methods.
const (
	// MethodPackageURL uploads the package to Blob Storage and points the
	// app's WEBSITE_RUN_FROM_PACKAGE setting at it: the only way to deploy
	// a locally built package to a Linux Consumption plan app.
	MethodPackageURL = "package-url"
	// MethodZipDeploy POSTs the package to the app's Kudu /api/zipdeploy
	// endpoint: Premium, Dedicated and Windows plans.
	MethodZipDeploy = "zipdeploy"
)

// armScope is the token audience for Azure Resource Manager and Kudu.
const armScope = "https://management.azure.com/.default"

// DeployConfig configures Deploy.
type DeployConfig struct {
	// SubscriptionID, ResourceGroup and App name the Function App, which
	// must exist (create it with `az functionapp create ... --runtime
	// custom --os-type Linux --consumption-plan-location REGION`).
	SubscriptionID, ResourceGroup, App string
	// Method is MethodPackageURL (default) or MethodZipDeploy.
	Method string
	// Storage is the account the package is uploaded to (MethodPackageURL),
	// normally the app's own AzureWebJobsStorage account; Container is
	// the container, created if missing (default "gale-deployments").
	Storage   BlobConfig
	Container string
	// SASValidity is how long the package URL's SAS stays valid when
	// Storage has a key: the app reads its package from it at every cold
	// start. Default 5 years. Without a key the URL has no SAS and the
	// app reads it with its managed identity
	// (WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID=SystemAssigned),
	// which needs the Storage Blob Data Reader role on the container.
	SASValidity time.Duration
	// Credential authenticates to Azure Resource Manager (and Kudu); nil
	// takes the SDK's default chain (environment, workload and managed
	// identity, Azure CLI).
	Credential azcore.TokenCredential
	// ARM holds client options for Resource Manager, e.g. another cloud
	// or a test endpoint.
	ARM *arm.ClientOptions
	// SCMURL is the app's Kudu base URL; default
	// https://APP.scm.azurewebsites.net.
	SCMURL string
	// HTTPClient sends the zipdeploy request; default http.DefaultClient.
	HTTPClient *http.Client
}

// Validate reports every problem with c.
func (c DeployConfig) Validate() error {
	var errs []error
	if c.SubscriptionID == "" {
		errs = append(errs, errors.New("subscription_id is required (or AZURE_SUBSCRIPTION_ID)"))
	}
	if c.ResourceGroup == "" {
		errs = append(errs, errors.New("resource_group is required"))
	}
	if !appName.MatchString(c.App) {
		errs = append(errs, fmt.Errorf("app %q is not a Function App name", c.App))
	}
	switch c.Method {
	case "", MethodPackageURL:
		if err := c.Storage.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("package storage (deploy.storage_account...): %w", err))
		}
	case MethodZipDeploy:
	default:
		errs = append(errs, fmt.Errorf("method %q is not %s or %s", c.Method, MethodPackageURL, MethodZipDeploy))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("azure: deploy: %w", err)
	}
	return nil
}

// DeployResult tells what Deploy did.
type DeployResult struct {
	// PackageURL is where the app runs its package from (without the
	// SAS), for MethodPackageURL.
	PackageURL string
	// FunctionURL is the base URL invocations go to.
	FunctionURL string
}

// Deploy publishes a custom-handler app package (Package's output) to an
// existing Function App and syncs its triggers, through the Azure SDK.
func Deploy(ctx context.Context, cfg DeployConfig, pkg []byte) (DeployResult, error) {
	if err := cfg.Validate(); err != nil {
		return DeployResult{}, err
	}
	cred := cfg.Credential
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return DeployResult{}, fmt.Errorf("azure: deploy: no Azure credentials (sign in with `az login`, or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET): %w", err)
		}
		cred = c
	}
	apps, err := armappservice.NewWebAppsClient(cfg.SubscriptionID, cred, cfg.ARM)
	if err != nil {
		return DeployResult{}, fmt.Errorf("azure: deploy: %w", err)
	}
	res := DeployResult{FunctionURL: "https://" + cfg.App + ".azurewebsites.net"}
	what := fmt.Sprintf("app %s in resource group %s", cfg.App, cfg.ResourceGroup)
	if cfg.Method == MethodZipDeploy {
		if err := zipDeploy(ctx, cfg, cred, pkg); err != nil {
			return res, err
		}
	} else {
		url, settings, err := uploadPackage(ctx, cfg, pkg)
		if err != nil {
			return res, err
		}
		res.PackageURL = url
		cur, err := apps.ListApplicationSettings(ctx, cfg.ResourceGroup, cfg.App, nil)
		if err != nil {
			return res, armError("reading the app settings of "+what, err)
		}
		props := cur.Properties
		if props == nil {
			props = map[string]*string{}
		}
		for k, v := range settings {
			props[k] = to.Ptr(v)
		}
		if _, err := apps.UpdateApplicationSettings(ctx, cfg.ResourceGroup, cfg.App, armappservice.StringDictionary{Properties: props}, nil); err != nil {
			return res, armError("setting WEBSITE_RUN_FROM_PACKAGE on "+what, err)
		}
	}
	if _, err := apps.SyncFunctionTriggers(ctx, cfg.ResourceGroup, cfg.App, nil); err != nil {
		return res, armError("syncing the triggers of "+what, err)
	}
	return res, nil
}

// uploadPackage stores the package as a block blob named by its content
// hash and returns its URL and the app settings that run it.
func uploadPackage(ctx context.Context, cfg DeployConfig, pkg []byte) (string, map[string]string, error) {
	container := cfg.Container
	if container == "" {
		container = "gale-deployments"
	}
	st, err := NewBlob(cfg.Storage, container, "")
	if err != nil {
		return "", nil, err
	}
	if _, err := st.Container().Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return "", nil, st.fail(ctx, "create container", st.String(), err)
	}
	sum := sha256.Sum256(pkg)
	name := cfg.App + "-" + hex.EncodeToString(sum[:8]) + ".zip"
	if err := st.Put(ctx, name, bytes.NewReader(pkg)); err != nil {
		return "", nil, err
	}
	blob := st.Container().NewBlobClient(name)
	settings := map[string]string{"FUNCTIONS_WORKER_RUNTIME": "custom"}
	if cfg.Storage.Key == "" {
		settings["WEBSITE_RUN_FROM_PACKAGE"] = blob.URL()
		settings["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] = "SystemAssigned"
		return blob.URL(), settings, nil
	}
	validity := cfg.SASValidity
	if validity == 0 {
		validity = 5 * 365 * 24 * time.Hour
	}
	signed, err := blob.GetSASURL(sas.BlobPermissions{Read: true}, time.Now().Add(validity), nil)
	if err != nil {
		return "", nil, fmt.Errorf("azure: deploy: signing the package URL: %w", err)
	}
	settings["WEBSITE_RUN_FROM_PACKAGE"] = signed
	return blob.URL(), settings, nil
}

// zipDeploy POSTs the package to Kudu's synchronous /api/zipdeploy with a
// Resource Manager token.
func zipDeploy(ctx context.Context, cfg DeployConfig, cred azcore.TokenCredential, pkg []byte) error {
	scm := cfg.SCMURL
	if scm == "" {
		scm = "https://" + cfg.App + ".scm.azurewebsites.net"
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{armScope}})
	if err != nil {
		return fmt.Errorf("azure: deploy: getting a token for %s: %w", scm, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(scm, "/")+"/api/zipdeploy", bytes.NewReader(pkg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("azure: deploy: zipdeploy to %s: %w", scm, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("azure: deploy: %s refused the credential (HTTP %d): it needs the Website Contributor role on the app: %s", scm, resp.StatusCode, quote(body))
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("azure: deploy: %s has no zipdeploy endpoint (HTTP 404): a Linux Consumption app needs method %s", scm, MethodPackageURL)
	default:
		return fmt.Errorf("azure: deploy: zipdeploy to %s answered HTTP %d: %s", scm, resp.StatusCode, quote(body))
	}
}

// armError names the failed step and the usual fixes.
func armError(step string, err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("azure: deploy: %s: not found (HTTP 404, %s): create the Function App first (`az functionapp create --runtime custom --os-type Linux ...`) and check subscription_id, resource_group and app", step, re.ErrorCode)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("azure: deploy: %s: access denied (HTTP %d, %s): the credential needs the Website Contributor role on the app", step, re.StatusCode, re.ErrorCode)
		}
	}
	return fmt.Errorf("azure: deploy: %s: %w", step, err)
}
