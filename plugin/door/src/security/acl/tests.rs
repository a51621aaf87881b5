use super::*;

fn acl(text: &str) -> AclFile {
    AclFile::parse(text, Path::new("acl")).unwrap()
}

fn filter(f: &str) -> TopicFilter {
    TopicFilter::new(f).unwrap()
}

const FILE: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite sensors/#
topic deny sensors/secret
topic write alice/out

user bob
topic sensors/bob/#

pattern write devices/%c/#
pattern read users/%u/#
";

#[test]
fn rules_before_any_user_line_are_the_anonymous_clients() {
    let anonymous = acl(FILE).for_client("anon-1", None);
    assert!(anonymous.may_read("public/news"));
    assert!(!anonymous.may_write("public/news"));
    assert!(!anonymous.may_read("sensors/x"));
    assert!(anonymous.may_write("devices/anon-1/state"));
    assert!(!anonymous.may_write("devices/other/state"));
    assert!(
        !anonymous.may_read("users//x"),
        "%u does not apply without a user name"
    );
}

#[test]
fn a_users_rules_grant_and_deny_wins() {
    let alice = acl(FILE).for_client("a1", Some("alice"));
    assert!(alice.may_write("sensors/t"));
    assert!(alice.may_read("sensors/t"));
    assert!(!alice.may_read("sensors/secret"));
    assert!(!alice.may_write("sensors/secret"));
    assert!(alice.may_write("alice/out"));
    assert!(!alice.may_read("alice/out"));
    assert!(
        !alice.may_read("public/news"),
        "anonymous rules are not alice's"
    );
    assert!(alice.may_read("users/alice/inbox"));
    assert!(!alice.may_read("users/bob/inbox"));
    let bob = acl(FILE).for_client("b1", Some("bob"));
    assert!(bob.may_write("sensors/bob/t") && bob.may_read("sensors/bob/t"));
    assert!(!bob.may_write("sensors/alice"));
}

#[test]
fn subscriptions_must_lie_within_a_readable_rule() {
    let alice = acl(FILE).for_client("a1", Some("alice"));
    assert!(alice.may_subscribe(&filter("sensors/#")));
    assert!(alice.may_subscribe(&filter("sensors/+/t")));
    assert!(!alice.may_subscribe(&filter("#")));
    assert!(!alice.may_subscribe(&filter("sensors/secret")));
    assert!(!alice.may_subscribe(&filter("alice/out")), "write only");
}

#[test]
fn patterns_skip_ids_that_would_widen_them() {
    let sneaky = acl(FILE).for_client("+", None);
    assert!(!sneaky.may_write("devices/x/state"));
    let sneaky = acl(FILE).for_client("c", Some("#"));
    assert!(!sneaky.may_read("users/x/y"));
}

#[test]
fn bad_lines_are_located() {
    let error = AclFile::parse("user alice\n  topic read a/#/b\n", Path::new("acl")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "acl:2:14: invalid topic filter `a/#/b`: `+` must fill a whole level and `#` a whole last level"
    );
    let error = AclFile::parse("allow all\n", Path::new("acl")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "acl:1:1: unknown keyword `allow`, expected user, topic or pattern"
    );
}

#[test]
fn without_rules_nothing_is_allowed() {
    let nobody = acl("").for_client("c", Some("u"));
    assert!(!nobody.may_write("a") && !nobody.may_read("a"));
    assert!(!nobody.may_subscribe(&filter("a")));
}
