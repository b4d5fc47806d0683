package ssm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/aptfleet/aptfleet/notifier/ssm"
)

// parameterStore is a hand-written stand-in for Parameter Store: no SSM
// server runs here, so this speaks just enough of SSM's JSON protocol
// (awsJson1_1, X-Amz-Target AmazonSSM.GetParameter) for the real SDK client
// to make and decode the call. It records the request it got.
func parameterStore(t *testing.T, params map[string]string) (*awsssm.Client, *[]map[string]any) {
	t.Helper()
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		body, _ := io.ReadAll(r.Body)
		var in map[string]any
		if r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" || json.Unmarshal(body, &in) != nil ||
			!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"ValidationException","message":"bad request"}`)
			return
		}
		got = append(got, in)
		name, _ := in["Name"].(string)
		v, ok := params[name]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"ParameterNotFound","message":"Parameter `+name+` not found."}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
			"Name": name, "Type": "SecureString", "Value": v, "Version": 3,
			"ARN": "arn:aws:ssm:eu-west-1:111122223333:parameter" + name, "DataType": "text",
		}})
	}))
	t.Cleanup(srv.Close)
	client := awsssm.New(awsssm.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  staticCreds{},
	})
	return client, &got
}

type staticCreds struct{}

func (staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", Source: "test"}, nil
}

func TestWebhook(t *testing.T) {
	client, got := parameterStore(t, map[string]string{
		"/aptfleet/slack-webhook": "https://hooks.slack.com/services/T000/B000/XXXX\n",
		"/aptfleet/not-a-url":     "xoxb-this-is-a-token",
	})
	tests := []struct {
		name     string
		param    string
		want     string
		wantErr  error
		notFound bool
	}{
		{name: "secure string", param: "/aptfleet/slack-webhook", want: "https://hooks.slack.com/services/T000/B000/XXXX"},
		{name: "not a url", param: "/aptfleet/not-a-url", wantErr: ssm.ErrNotURL},
		{name: "missing", param: "/aptfleet/missing", notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			*got = nil
			v, err := ssm.Webhook(context.Background(), client, tt.param)
			if len(*got) != 1 || (*got)[0]["Name"] != tt.param || (*got)[0]["WithDecryption"] != true {
				t.Fatalf("request %v, want Name %s with decryption", *got, tt.param)
			}
			switch {
			case tt.notFound:
				var nf *types.ParameterNotFound
				if !errors.As(err, &nf) || !strings.Contains(err.Error(), tt.param) {
					t.Fatalf("error %v, want ParameterNotFound naming %s", err, tt.param)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) || strings.Contains(err.Error(), "xoxb") {
					t.Fatalf("error %v, want %v without the value", err, tt.wantErr)
				}
			default:
				if err != nil || v != tt.want {
					t.Fatalf("got %q, %v; want %q", v, err, tt.want)
				}
			}
		})
	}
}
