// The one setting of the website: where the API lives.
// "" = the same origin as this page (what `python -m deployment.local` serves).
// After `npx serverless deploy`, put the HttpApiUrl it prints here, e.g.
//   window.API_BASE_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com";
window.API_BASE_URL = "";
