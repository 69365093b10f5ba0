//! The HTTP client the tests call the local stack's API Gateway with.

use infra::LocalStack;
use serde_json::Value;

pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(stack: &LocalStack) -> Self {
        Self { base: stack.api_url.clone(), http: reqwest::Client::new() }
    }

    async fn finish(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        Self::finish(resp).await
    }

    /// Any request, with a bearer token and extra headers.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        Self::finish(req.send().await.unwrap()).await
    }

    /// POST as a signed-in user, with extra headers.
    pub async fn post_as(&self, path: &str, token: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(token), headers, Some(&body.to_string())).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Self::finish(req.send().await.unwrap()).await
    }
}
