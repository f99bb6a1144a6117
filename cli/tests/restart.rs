//! A local stack restarted over an emulator that kept its resources (a crash, `up --endpoint`)
//! comes back: existing queues are kept with their messages, even when their attributes were
//! changed since, and are set back to the template's attributes.

use aws_sdk_sqs::types::QueueAttributeName;
use hooksctl::stack::resources::{self, LocalSecrets, Names};
use integration_tests::{emulator, unique};
use meeting_hooks::schema::JOBS_QUEUE;

const SECRETS: LocalSecrets<'static> = LocalSecrets {
    webhook_secret: "whsec_restart_test",
    authorization: "Bearer restart_test",
    daily_webhook_secret: "cmVzdGFydA==",
    daily_api_key: "restart_key",
    videosdk_public_key: "-----BEGIN PUBLIC KEY-----\nrestart\n-----END PUBLIC KEY-----\n",
    jitsi_token: "restart_test_token_0123",
    read_api_token: "restart_read_token_0123",
    jaas_app_id: "vpaas-magic-cookie-restart",
    jaas_key_id: "restart",
    jaas_private_key: "-----BEGIN PRIVATE KEY-----\nrestart\n-----END PRIVATE KEY-----\n",
};

#[tokio::test(flavor = "multi_thread")]
async fn up_over_existing_resources_keeps_them_and_the_work_in_flight() {
    let emu = emulator();
    let names = Names::with_prefix(&unique("restart"));
    let first = resources::create(&emu.sdk, &names, &SECRETS)
        .await
        .expect("first up");

    // Work in flight, and a queue whose attributes drifted from the template's.
    let sqs = emu.sqs();
    sqs.send_message()
        .queue_url(&first.queue_url)
        .message_body("in flight")
        .send()
        .await
        .expect("send");
    sqs.set_queue_attributes()
        .queue_url(&first.queue_url)
        .attributes(QueueAttributeName::VisibilityTimeout, "7")
        .send()
        .await
        .expect("drift");

    let second = resources::create(&emu.sdk, &names, &SECRETS)
        .await
        .expect("up again over the existing resources");
    assert_eq!(second.queue_url, first.queue_url);
    assert_eq!(second.dlq_url, first.dlq_url);
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&second.queue_url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    assert_eq!(
        attrs.get(&QueueAttributeName::VisibilityTimeout),
        Some(&JOBS_QUEUE.visibility_timeout_secs.to_string()),
        "the template's attribute is set again"
    );
    assert_eq!(emu.drain(&second.queue_url).await, ["in flight"]);
}
