package httpapi

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPI is the API's OpenAPI 3.1 document, kept in the repository and
// checked against the routes by a test.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the embedded document.
func OpenAPI() []byte { return openAPI }

func serveOpenAPI(w http.ResponseWriter, r *http.Request, _ *reqCtx) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPI)))
	_, _ = w.Write(openAPI)
}
