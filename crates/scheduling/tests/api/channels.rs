use caravan_proto::scheduling::v1::{
    Channel, CreateChannelRequest, GetChannelRequest, ListChannelsRequest, UpdateChannelRequest,
    scheduling_service_client::SchedulingServiceClient,
};
use caravan_testkit::{Caller, violated_fields};
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::spawn_app;

fn create(id: &str, platform: &str, display_name: &str) -> CreateChannelRequest {
    CreateChannelRequest {
        channel: Some(Channel {
            platform: platform.into(),
            display_name: display_name.into(),
            partner: platform.into(),
            ..Default::default()
        }),
        channel_id: id.into(),
        request_id: String::new(),
    }
}

#[tokio::test]
async fn channels_on_hema_and_douyin_list_by_partner() {
    let mut app = spawn_app().await;
    app.client.create_channel(create("hema-sco", "hema", "盒马 上合好物")).await.unwrap();
    app.client.create_channel(create("douyin-sco", "douyin", "抖音 上合直播间")).await.unwrap();
    app.client.create_channel(create("hema-guests", "hema", "盒马 嘉宾国")).await.unwrap();
    let status = app.client.create_channel(create("hema-sco", "hema", "again")).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);

    // Partners may read channels.
    let mut partner = SchedulingServiceClient::new(app._server.channel_as(Caller::Hema));
    let read = partner.get_channel(GetChannelRequest { name: "channels/hema-sco".into() }).await.unwrap().into_inner();
    assert_eq!((read.platform.as_str(), read.partner.as_str()), ("hema", "hema"));

    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = partner
            .list_channels(ListChannelsRequest { page_size: 1, page_token: token, partner: "hema".into() })
            .await
            .unwrap()
            .into_inner();
        names.extend(page.channels.into_iter().map(|c| c.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names, ["channels/hema-guests", "channels/hema-sco"]);
}

#[tokio::test]
async fn bad_channels_and_updates_are_refused_and_change_nothing() {
    let mut app = spawn_app().await;
    let status = app.client.create_channel(create("x", "Hema", "")).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["channel_id", "channel.platform", "channel.display_name", "channel.partner"]);
    let created = app.client.create_channel(create("hema-sco", "hema", "盒马 上合好物")).await.unwrap().into_inner();
    let updated = app
        .client
        .update_channel(UpdateChannelRequest {
            channel: Some(Channel {
                name: created.name.clone(),
                display_name: "盒马 上合国家馆".into(),
                platform: "ignored".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["display_name".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((updated.display_name.as_str(), updated.platform.as_str()), ("盒马 上合国家馆", "hema"));
    let status = app
        .client
        .update_channel(UpdateChannelRequest {
            channel: Some(Channel { name: created.name.clone(), etag: created.etag.clone(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["display_name".into()] }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "stale etag");
    let status = app
        .client
        .list_channels(ListChannelsRequest { partner: "Hema!".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["partner"]);
    let read = app.client.get_channel(GetChannelRequest { name: created.name }).await.unwrap().into_inner();
    assert_eq!(read, updated);
}
