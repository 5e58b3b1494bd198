package httpapi_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgerd/ledgerd/httpapi"
)

// The OpenAPI document is kept by hand in httpapi/openapi.json. These tests
// hold it to the code: the same routes as routes.go, every error code of
// errors.go, and the shape rules of docs/api.md. They need no database:
// NewServer only registers routes, and nothing here reaches a handler that
// queries.

// openAPIDoc is the subset of an OpenAPI document the tests look at.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]json.RawMessage `json:"schemas"`
		Responses       map[string]json.RawMessage `json:"responses"`
		Parameters      map[string]json.RawMessage `json:"parameters"`
		Headers         map[string]json.RawMessage `json:"headers"`
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

type openAPIOperation struct {
	Security    *[]map[string][]string     `json:"security"`
	Parameters  []json.RawMessage          `json:"parameters"`
	RequestBody json.RawMessage            `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

type openAPIParameter struct {
	Ref   string `json:"$ref"`
	Name  string `json:"name"`
	In    string `json:"in"`
	Style string `json:"style"`
}

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	raw := httpapi.OpenAPI()
	if !json.Valid(raw) {
		t.Fatal("httpapi/openapi.json is not valid JSON")
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("httpapi/openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	return &doc
}

func operations(t *testing.T, doc *openAPIDoc) map[string]openAPIOperation {
	t.Helper()
	ops := map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		for key, raw := range item {
			if !slices.Contains(httpMethods, key) {
				continue // parameters, summary, ...
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return ops
}

// routePattern turns a net/http pattern ("GET /v1/x/{id}") into the
// OpenAPI form ("GET /v1/x/{id}"): the same braces, without Go's "{$}"
// anchor or the "..." of a wildcard remainder.
func routePattern(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	return strings.ReplaceAll(p, "...}", "}")
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	documented := operations(t, doc)
	served := map[string]bool{}
	for _, r := range httpapi.NewServer(nil, nil, httpapi.Config{}).Routes() {
		served[routePattern(r)] = true
		// net/http serves HEAD on every GET pattern; the document says so.
		if p, ok := strings.CutPrefix(routePattern(r), "GET "); ok {
			served["HEAD "+p] = true
		}
	}
	var missing, extra []string
	for r := range served {
		if _, ok := documented[r]; !ok {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 {
		t.Errorf("routes served but not in openapi.json:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("operations in openapi.json that routes.go does not serve:\n  %s", strings.Join(extra, "\n  "))
	}
}

// TestOpenAPIQueryParameters: the document lists exactly the query
// parameters each route takes; any other is 422, so a parameter missing
// from either side is a bug.
func TestOpenAPIQueryParameters(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	ops := operations(t, doc)
	srv := httpapi.NewServer(nil, nil, httpapi.Config{})
	for _, r := range srv.Routes() {
		op, ok := ops[routePattern(r)]
		if !ok {
			continue // TestOpenAPIMatchesRoutes reports it
		}
		var documented []string
		for _, raw := range op.Parameters {
			var p openAPIParameter
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			if p.Ref != "" {
				if err := json.Unmarshal(doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")], &p); err != nil {
					t.Fatal(err)
				}
			}
			if p.In != "query" {
				continue
			}
			if p.Style == "deepObject" {
				p.Name += "[]"
			}
			documented = append(documented, p.Name)
		}
		taken := srv.QueryParameters(r)
		slices.Sort(documented)
		slices.Sort(taken)
		if !slices.Equal(documented, taken) {
			t.Errorf("%s: openapi.json lists query parameters %q, the route takes %q", r, documented, taken)
		}
	}
}

// public are the routes that need no key (docs/api.md).
var public = []string{"GET /healthz", "GET /readyz", "GET /v1/openapi.json",
	"HEAD /healthz", "HEAD /readyz", "HEAD /v1/openapi.json"}

// created are the operations that answer 201 with a Location.
var created = []string{"POST /v1/ledgers", "POST /v1/api-keys", "POST /v1/ledgers/{ledger}/accounts",
	"POST /v1/ledgers/{ledger}/transactions", "POST /v1/ledgers/{ledger}/webhooks",
	"POST /v1/ledgers/{ledger}/monitors"}

func TestOpenAPIOperations(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("components.securitySchemes.bearerAuth = %+v, want http bearer", s)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearerAuth"] == nil {
		t.Errorf("top-level security = %v, want [{bearerAuth: []}]", doc.Security)
	}
	for name, op := range operations(t, doc) {
		isPublic := slices.Contains(public, name)
		switch {
		case isPublic && (op.Security == nil || len(*op.Security) != 0):
			t.Errorf("%s needs no key: want security: []", name)
		case !isPublic && op.Security != nil:
			t.Errorf("%s needs a key: it must not override security", name)
		}
		var ok2xx, has4xx bool
		for code := range op.Responses {
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response %q is not a status code", name, code)
				continue
			}
			ok2xx = ok2xx || n/100 == 2
			has4xx = has4xx || n/100 == 4
		}
		if !ok2xx {
			t.Errorf("%s: no 2xx response", name)
		}
		// Every route can be 405 (another method on its path) and 422
		// (an unknown query parameter); a route with a body can be 415.
		if !has4xx {
			t.Errorf("%s: no 4xx response", name)
		}
		for _, code := range []string{"405", "422"} {
			if _, ok := op.Responses[code]; !ok {
				t.Errorf("%s: no %s response", name, code)
			}
		}
		if _, ok := op.Responses["415"]; ok != (op.RequestBody != nil) {
			t.Errorf("%s: a 415 response is declared %v, a request body %v", name, ok, op.RequestBody != nil)
		}
		_, has201 := op.Responses["201"]
		if has201 != slices.Contains(created, name) {
			t.Errorf("%s: 201 declared %v, want %v", name, has201, slices.Contains(created, name))
		}
		// Every answer's headers include Cache-Control and nosniff, and a
		// 201 names its resource.
		for code, raw := range op.Responses {
			h := responseHeaders(t, doc, raw)
			for _, want := range []string{"Request-Id", "Cache-Control", "X-Content-Type-Options"} {
				if !h[want] {
					t.Errorf("%s %s: no %s header", name, code, want)
				}
			}
			if code == "201" && !h["Location"] {
				t.Errorf("%s 201: no Location header", name)
			}
		}
		if !isPublic {
			for _, code := range []string{"401", "429", "503"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s: authenticated route without a %s response", name, code)
				}
			}
		}
		// Every {param} of the path is declared as a path parameter.
		path := strings.SplitN(name, " ", 2)[1]
		declared := map[string]bool{}
		for _, raw := range op.Parameters {
			var p openAPIParameter
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			if p.Ref != "" {
				c, ok := doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
				if !ok {
					t.Errorf("%s: unresolved parameter %s", name, p.Ref)
					continue
				}
				if err := json.Unmarshal(c, &p); err != nil {
					t.Fatal(err)
				}
			}
			if p.In == "path" {
				declared[p.Name] = true
			}
		}
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") && !declared[strings.Trim(seg, "{}")] {
				t.Errorf("%s: path parameter %s is not declared", name, seg)
			}
		}
	}
}

// responseHeaders returns the header names of a response, following a $ref
// into components.responses.
func responseHeaders(t *testing.T, doc *openAPIDoc, raw json.RawMessage) map[string]bool {
	t.Helper()
	var r struct {
		Ref     string                     `json:"$ref"`
		Headers map[string]json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Ref != "" {
		c, ok := doc.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]
		if !ok {
			t.Fatalf("unresolved response %s", r.Ref)
		}
		return responseHeaders(t, doc, c)
	}
	out := map[string]bool{}
	for k := range r.Headers {
		out[k] = true
	}
	return out
}

// TestOpenAPIRefs checks that every $ref points into the document.
func TestOpenAPIRefs(t *testing.T) {
	t.Parallel()
	var root any
	if err := json.Unmarshal(httpapi.OpenAPI(), &root); err != nil {
		t.Fatal(err)
	}
	resolve := func(ref string) bool {
		if !strings.HasPrefix(ref, "#/") {
			return false
		}
		node := root
		for _, part := range strings.Split(ref[2:], "/") {
			m, ok := node.(map[string]any)
			if !ok {
				return false
			}
			if node, ok = m[strings.NewReplacer("~1", "/", "~0", "~").Replace(part)]; !ok {
				return false
			}
		}
		return true
	}
	var walk func(any)
	walk = func(n any) {
		switch v := n.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && !resolve(ref) {
				t.Errorf("unresolved $ref %q", ref)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(root)
}

// serverCodes returns the values of the Code* constants of the root
// package's errors.go: every problem code the server can send.
func serverCodes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, v)
			}
		}
	}
	if len(codes) < 19 {
		t.Fatalf("found only %d Code constants in errors.go: %v", len(codes), codes)
	}
	return codes
}

func TestOpenAPIProblemCodes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	var problem struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			Enum []any `json:"enum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(doc.Components.Schemas["Problem"], &problem); err != nil {
		t.Fatalf("components.schemas.Problem: %v", err)
	}
	for _, f := range []string{"type", "title", "status", "detail", "code"} {
		if !slices.Contains(problem.Required, f) {
			t.Errorf("Problem does not require %q", f)
		}
	}
	for _, f := range []string{"errors", "transaction_id", "index"} {
		if _, ok := problem.Properties[f]; !ok {
			t.Errorf("Problem has no property %q", f)
		}
	}
	enum := map[string]bool{}
	for _, v := range problem.Properties["code"].Enum {
		s, _ := v.(string)
		enum[s] = true
	}
	codes := serverCodes(t)
	for _, c := range codes {
		if !enum[c] {
			t.Errorf("code %q (errors.go) is missing from the Problem code enum", c)
		}
		delete(enum, c)
	}
	for c := range enum {
		t.Errorf("Problem code enum has %q, which errors.go does not define", c)
	}
}

// TestOpenAPIServed checks that GET /v1/openapi.json serves the embedded
// document, without a key.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(httpapi.NewServer(nil, nil, httpapi.Config{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if string(b) != string(httpapi.OpenAPI()) {
		t.Fatal("GET /v1/openapi.json does not serve the embedded document")
	}
}
