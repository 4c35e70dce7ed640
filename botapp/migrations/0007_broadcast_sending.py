"""Broadcasts that send: combinable audience segments (replacing the single `audience` choice), a
schedule, a button to a URL or a bot screen, paid broadcasts, pause, the `send_broadcast` permission,
and one `BroadcastRecipient` row per user (claimed before each send)."""

import django.db.models.deletion
from django.db import migrations, models

# The old single audience -> the segments, and back (the closest single audience).
OLD_TO_NEW = {"ru": {"language": "ru"}, "en": {"language": "en"}, "paying": {"paid": "paid"}, "never_paid": {"paid": "never"}}


def audience_to_segments(apps, schema_editor):
    Broadcast = apps.get_model("botapp", "Broadcast")
    for audience, fields in OLD_TO_NEW.items():
        Broadcast.objects.filter(audience=audience).update(**fields)


def segments_to_audience(apps, schema_editor):
    Broadcast = apps.get_model("botapp", "Broadcast")
    for audience, fields in OLD_TO_NEW.items():
        Broadcast.objects.filter(**fields).update(audience=audience)


class Migration(migrations.Migration):

    dependencies = [
        ('botapp', '0006_genrequest_xp_awarded'),
    ]

    operations = [
        migrations.CreateModel(
            name='BroadcastRecipient',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('sent', 'Sent'), ('blocked', 'Blocked the bot'), ('failed', 'Failed'), ('unknown', 'Outcome unknown')], default='pending', max_length=8)),
                ('claimed_until', models.DateTimeField(blank=True, null=True)),
                ('claim_token', models.CharField(blank=True, max_length=32)),
                ('message_id', models.BigIntegerField(blank=True, null=True)),
                ('error', models.CharField(blank=True, max_length=255)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.AlterModelOptions(
            name='broadcast',
            options={'permissions': [('send_broadcast', 'Can start, preview, pause, resume and cancel broadcasts')]},
        ),
        migrations.AddField(
            model_name='broadcast',
            name='active_within_days',
            field=models.PositiveIntegerField(blank=True, help_text='Seen by the bot within the last N days.', null=True),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='allow_paid_broadcast',
            field=models.BooleanField(default=False, help_text="Telegram's paid broadcasts: up to 1000 messages/s, 0.1 Star per message."),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='button_screen',
            field=models.CharField(blank=True, choices=[('', 'No screen'), ('main', 'Main menu'), ('img', 'Create an image'), ('vid', 'Create a video'), ('top', 'Top up'), ('bal', 'Balance'), ('promo', 'Promocode'), ('inv', 'Invite friends')], default='', max_length=8),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='created_by',
            field=models.CharField(blank=True, editable=False, max_length=150),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='has_balance',
            field=models.BooleanField(default=False, help_text='Only users with tokens (purchased or bonus).'),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='joined_after',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='joined_before',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='language',
            field=models.CharField(blank=True, choices=[('ru', 'Русский'), ('en', 'English')], default='', max_length=2),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='level_max',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='level_min',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='never_generated',
            field=models.BooleanField(default=False, help_text='Only users who never requested a generation.'),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='paid',
            field=models.CharField(blank=True, choices=[('', 'Anyone'), ('paid', 'Paid at least once'), ('never', 'Never paid')], default='', max_length=8),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='photo_file_id',
            field=models.CharField(blank=True, editable=False, max_length=255),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='prepared',
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='prepared_upto',
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='referred_only',
            field=models.BooleanField(default=False, help_text='Only users invited by someone.'),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='runner_token',
            field=models.CharField(blank=True, editable=False, max_length=32),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='runner_until',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='send_at',
            field=models.DateTimeField(blank=True, help_text='Empty: as soon as it is started.', null=True),
        ),
        migrations.AddField(
            model_name='broadcast',
            name='unknown',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='broadcast',
            name='status',
            field=models.CharField(choices=[('draft', 'Draft'), ('scheduled', 'Scheduled'), ('sending', 'Sending'), ('paused', 'Paused'), ('done', 'Done'), ('cancelled', 'Cancelled')], db_index=True, default='draft', max_length=16),
        ),
        migrations.AlterField(
            model_name='broadcast',
            name='text',
            field=models.TextField(help_text='Telegram HTML: <b>, <i>, <u>, <s>, <a href>, <code>, <pre>, <blockquote>, <tg-spoiler>; escape other <, & as &lt; &amp;.'),
        ),
        migrations.RunPython(audience_to_segments, segments_to_audience),
        migrations.RemoveField(
            model_name='broadcast',
            name='audience',
        ),
        migrations.AddField(
            model_name='broadcastrecipient',
            name='broadcast',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='recipients', to='botapp.broadcast'),
        ),
        migrations.AddField(
            model_name='broadcastrecipient',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='botapp.tguser'),
        ),
        migrations.AddIndex(
            model_name='broadcastrecipient',
            index=models.Index(fields=['broadcast', 'status', 'id'], name='bcast_recipient_status'),
        ),
        migrations.AddConstraint(
            model_name='broadcastrecipient',
            constraint=models.UniqueConstraint(fields=('broadcast', 'user'), name='broadcast_recipient_once'),
        ),
    ]
