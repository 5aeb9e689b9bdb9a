/** The few icons the app needs, drawn here (no icon font, and emoji are missing on some Linux desktops). */
import SvgIcon, { type SvgIconProps } from '@mui/material/SvgIcon';

export function FolderIcon(props: SvgIconProps) {
  return (
    <SvgIcon {...props}>
      <path d="M3 5h6.5l2 2H21v12H3z" />
    </SvgIcon>
  );
}

export function FileIcon(props: SvgIconProps) {
  return (
    <SvgIcon {...props}>
      <path d="M6 2h8l5 5v15H6zm8 1.5V8h4.5" fillRule="evenodd" />
    </SvgIcon>
  );
}
