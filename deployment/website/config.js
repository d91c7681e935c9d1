// The settings of the website.
// API_BASE_URL: where the API lives. "" = the same origin as this page (what `python -m deployment.local`
// serves). For S3, do not edit it by hand: `python -m deployment.local --build-site DIR --api-url URL`
// writes a copy of the site with the URL here and its origin in the page's Content-Security-Policy.
window.API_BASE_URL = "";
// API_TIMEOUT_MS: how long to wait for an answer before saying so (a cold start takes a few seconds).
window.API_TIMEOUT_MS = 15000;
