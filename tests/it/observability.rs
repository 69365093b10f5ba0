//! What operations hear about, read from `template.yaml`: a message in any dead-letter
//! queue, any function's errors and throttles, the API's 5xx rate and a payment whose amount
//! differs from its order each raise an alarm, on the `AlarmTopicArn` topic when one is given;
//! every function's log group and the API's access log keep logs for a bounded time.

use infra::YamlValue as Value;
use infra::template::{Template, intrinsic, referenced_id};

fn template() -> (Template, Value) {
    let path = infra::repo_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    (Template::load(&path).unwrap(), serde_yaml::from_str(&text).unwrap())
}

fn alarms(t: &Template) -> Vec<(&String, &Value)> {
    t.of_kind("AWS::CloudWatch::Alarm").map(|(id, r)| (id, &r.properties)).collect()
}

fn text(v: Option<&Value>) -> String {
    v.and_then(intrinsic).map(|(_, s)| s).unwrap_or_default()
}

/// Alarms on `namespace`/`metric` with a dimension whose value is `!Ref id`, `!GetAtt id.*`
/// (or mentions `${id}`), directly or as one of a metric-math alarm's metrics.
fn alarms_on<'a>(t: &'a Template, namespace: &str, metric: &str, id: &str) -> Vec<&'a String> {
    let matches = |m: &Value| {
        text(m.get("Namespace")) == namespace
            && text(m.get("MetricName")) == metric
            && m.get("Dimensions").and_then(Value::as_sequence).is_some_and(|ds| {
                ds.iter().any(|d| {
                    let v = d.get("Value");
                    v.and_then(referenced_id).as_deref() == Some(id) || text(v).contains(&format!("${{{id}}}"))
                })
            })
    };
    alarms(t)
        .into_iter()
        .filter(|(_, p)| {
            matches(p)
                || p.get("Metrics").and_then(Value::as_sequence).is_some_and(|ms| {
                    ms.iter().filter_map(|m| m.get("MetricStat").and_then(|s| s.get("Metric"))).any(matches)
                })
        })
        .map(|(id, _)| id)
        .collect()
}

fn dead_letter_queues(t: &Template) -> Vec<String> {
    let mut out: Vec<String> = t
        .of_kind("AWS::SQS::Queue")
        .filter_map(|(_, r)| r.properties.get("RedrivePolicy")?.get("deadLetterTargetArn").and_then(referenced_id))
        .collect();
    for f in t.functions().unwrap() {
        out.extend(f.streams.iter().filter_map(|s| s.on_failure_queue.clone()));
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn a_message_in_any_dead_letter_queue_raises_an_alarm() {
    let (t, _) = template();
    let queues = dead_letter_queues(&t);
    assert!(queues.len() >= 3, "{queues:?}");
    for q in queues {
        let found = alarms_on(&t, "AWS/SQS", "ApproximateNumberOfMessagesVisible", &q);
        let [alarm] = found.as_slice() else { panic!("{q}: one alarm on its visible messages, found {found:?}") };
        let p = &t.resources[*alarm].properties;
        assert_eq!(
            (text(p.get("Threshold")).as_str(), text(p.get("ComparisonOperator")).as_str()),
            ("0", "GreaterThanThreshold"),
            "{alarm}"
        );
    }
}

#[test]
fn every_function_alarms_on_errors_and_throttles_and_keeps_logs_for_a_bounded_time() {
    let (t, _) = template();
    let groups: Vec<(String, &Value)> = t
        .of_kind("AWS::Logs::LogGroup")
        .map(|(_, r)| (text(r.properties.get("LogGroupName")), &r.properties))
        .collect();
    for f in t.functions().unwrap() {
        let id = &f.logical_id;
        for metric in ["Errors", "Throttles"] {
            assert!(!alarms_on(&t, "AWS/Lambda", metric, id).is_empty(), "{id}: no alarm on {metric}");
        }
        let group = groups.iter().find(|(name, _)| *name == format!("/aws/lambda/${{{id}}}"));
        let Some((_, p)) = group else {
            panic!("{id}: no log group /aws/lambda/${{{id}}} (its implicit one keeps logs forever)")
        };
        assert!(!text(p.get("RetentionInDays")).is_empty(), "{id}: log group without RetentionInDays");
    }
}

#[test]
fn the_api_alarms_on_its_5xx_rate_and_writes_access_logs() {
    let (t, _) = template();
    let found = alarms_on(&t, "AWS/ApiGateway", "5xx", "HttpApi");
    let [alarm] = found.as_slice() else { panic!("one alarm on the API's 5xx, found {found:?}") };
    // A rate: 5xx over all requests (metric math), not a count that grows with traffic.
    assert!(!alarms_on(&t, "AWS/ApiGateway", "Count", "HttpApi").is_empty(), "{alarm}: not a rate");
    let api = &t.resources["HttpApi"].properties;
    let logs = api.get("AccessLogSettings").expect("HttpApi has AccessLogSettings");
    let group = text(logs.get("DestinationArn").and_then(|d| d.get("Fn::GetAtt").or(Some(d))));
    let group = group.split('.').next().unwrap();
    let dest = t.resources.get(group).unwrap_or_else(|| panic!("access logs go to {group:?}, not a log group here"));
    assert_eq!(dest.kind, "AWS::Logs::LogGroup");
    assert!(dest.properties.get("RetentionInDays").is_some(), "the access log group keeps logs forever");
    let format = text(logs.get("Format"));
    for field in ["$context.requestId", "$context.routeKey", "$context.status", "$context.integrationErrorMessage"] {
        assert!(format.contains(field), "access log format lacks {field}: {format}");
    }
}

/// The message top-up logs when a payment's amount differs from its order, from its source.
fn amount_differs_message() -> String {
    let dir = infra::repo_root().join("functions/top-up/src");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in source.lines().filter(|l| l.contains("tracing::") && l.contains("amount differs")) {
            let literal = line.rsplit_once('"').and_then(|(head, _)| head.rsplit_once('"')).map(|(_, s)| s.to_owned());
            found.extend(literal);
        }
    }
    let [message] = found.as_slice() else { panic!("one 'amount differs' log line in top-up, found {found:?}") };
    message.clone()
}

#[test]
fn a_payment_whose_amount_differs_from_its_order_raises_an_alarm() {
    let (t, _) = template();
    let message = amount_differs_message();
    let filters: Vec<&Value> = t
        .of_kind("AWS::Logs::MetricFilter")
        .map(|(_, r)| &r.properties)
        .filter(|p| text(p.get("FilterPattern")).contains(&format!("$.fields.message = \"{message}\"")))
        .collect();
    let [filter] = filters.as_slice() else { panic!("one metric filter on the JSON log line {message:?}") };
    let group = referenced_id(filter.get("LogGroupName").unwrap()).expect("the filter names a log group by !Ref");
    assert_eq!(text(t.resources[&group].properties.get("LogGroupName")), "/aws/lambda/${TopUpFunction}");
    let metric = &filter.get("MetricTransformations").and_then(Value::as_sequence).unwrap()[0];
    let (name, namespace) = (text(metric.get("MetricName")), text(metric.get("MetricNamespace")));
    let alarmed =
        alarms(&t).into_iter().any(|(_, p)| text(p.get("MetricName")) == name && text(p.get("Namespace")) == namespace);
    assert!(alarmed, "no alarm on {namespace}/{name}");
}

#[test]
fn alarms_notify_the_alarm_topic_when_one_is_given() {
    let (t, doc) = template();
    let parameter = &doc["Parameters"]["AlarmTopicArn"];
    assert_eq!(parameter["Default"].as_str(), Some(""), "optional: empty = no notifications");
    let all = alarms(&t);
    assert!(all.len() > 2 * t.functions().unwrap().len(), "{} alarms", all.len());
    for (id, p) in all {
        // !If [Condition, [!Ref AlarmTopicArn], !Ref AWS::NoValue]
        let actions = serde_yaml::to_string(p.get("AlarmActions").unwrap_or(&Value::Null)).unwrap();
        assert!(actions.contains("!If") && actions.contains("AlarmTopicArn"), "{id}: AlarmActions {actions}");
        let condition = match p.get("AlarmActions") {
            Some(Value::Tagged(tagged)) => {
                tagged.value.as_sequence().and_then(|s| s[0].as_str()).unwrap_or_default().to_owned()
            }
            _ => String::new(),
        };
        let defined = serde_yaml::to_string(&doc["Conditions"][condition.as_str()]).unwrap();
        assert!(defined.contains("AlarmTopicArn"), "{id}: condition {condition:?} is {defined}");
    }
}
